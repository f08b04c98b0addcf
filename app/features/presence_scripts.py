"""The Lua scripts that decide, atomically in Redis, whether a join or a leave is the first or the
last across nodes, and which people's every lease lapsed (presence_redis.py runs them).

A person's hash holds a field `node:<id>` -> `<expiry ms>|<transports>` per node that sees them;
a field is live while its expiry is ahead of the time the caller passes. A person's entry in the
index is what a reaper claims: only the one that removes it announces the leave.
"""

from __future__ import annotations

# Count live fields of other nodes; returns {live_others, own_was_live}.
_LIVE = """
local now = tonumber(ARGV[2])
local fields = redis.call('HGETALL', KEYS[1])
local others, mine = 0, 0
for i = 1, #fields, 2 do
  local f = fields[i]
  if string.sub(f, 1, 5) == 'node:' then
    local exp = tonumber(string.match(fields[i + 1], '^[^|]+'))
    if exp and exp > now then
      if f == 'node:' .. ARGV[1] then mine = 1 else others = others + 1 end
    end
  end
end
"""

JOIN = (
    _LIVE
    + """
local exp = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'node:' .. ARGV[1], exp .. '|' .. ARGV[4])
if others == 0 and mine == 0 then
  redis.call('HSET', KEYS[1], 'name', ARGV[5], 'since', ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 4)
redis.call('ZADD', KEYS[2], 'GT', exp, ARGV[6])
redis.call('ZADD', KEYS[3], 'GT', exp, ARGV[7])
if others == 0 and mine == 0 then return 1 end
return 0
"""
)

LEAVE = (
    _LIVE
    + """
redis.call('HDEL', KEYS[1], 'node:' .. ARGV[1])
if others == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[3])
  redis.call('ZREM', KEYS[3], ARGV[4])
  return 1
end
return 0
"""
)

REAP = """
local now = tonumber(ARGV[1])
local fields = redis.call('HGETALL', KEYS[1])
local name, latest = '', 0
for i = 1, #fields, 2 do
  local f = fields[i]
  if f == 'name' then name = fields[i + 1]
  elseif string.sub(f, 1, 5) == 'node:' then
    local exp = tonumber(string.match(fields[i + 1], '^[^|]+')) or 0
    if exp > latest then latest = exp end
  end
end
if latest > now then
  redis.call('ZADD', KEYS[3], latest, ARGV[3])
  return false
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
-- The index entry is the claim: another node's reaper (or a leave) that took it first has
-- announced this leave already.
if redis.call('ZREM', KEYS[3], ARGV[3]) == 0 then return false end
return name
"""
