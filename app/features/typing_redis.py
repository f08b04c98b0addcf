"""Typing signals shared by every node through Redis: who is typing in a channel, and the
throttle that forwards one signal per person per `typing_throttle`.

Keys: `fc:typing:{channel}` (hash: user -> `<until ms>|<name>`), `fc:typing:t:{channel}\\x1f{user}`
(the throttle, a key with a TTL).
"""

from __future__ import annotations

from redis.asyncio import Redis

from .redis_shared import SEP, RedisGuard, as_text, now_ms

SHED = """
for i = 2, #ARGV do
  local value = redis.call('HGET', KEYS[1], ARGV[i])
  if value and tonumber(string.match(value, '^[^|]*')) <= tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
"""
"""KEYS: a room's typing hash. ARGV: now (ms), then the people found lapsed at that time."""


class RedisTypingState:
    def __init__(
        self, redis: Redis, throttle: float, expiry: float, guard: RedisGuard | None = None
    ) -> None:
        self._redis = redis
        self._guard = guard or RedisGuard()
        self._throttle_ms = max(1, int(throttle * 1000))
        self._expiry_ms = int(expiry * 1000)
        self._shed = redis.register_script(SHED)

    async def signal(self, channel: str, user: str, name: str) -> bool:
        with self._guard("typing"):
            until = now_ms() + self._expiry_ms
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(f"fc:typing:t:{channel}{SEP}{user}", 1, nx=True, px=self._throttle_ms)
                pipe.hset(f"fc:typing:{channel}", user, f"{until}|{name}")
                pipe.pexpire(f"fc:typing:{channel}", self._expiry_ms + self._throttle_ms)
                forwarded, _, _ = await pipe.execute()
            return bool(forwarded)

    async def typing(self, channel: str) -> list[dict[str, str]]:
        with self._guard("typing"):
            now = now_ms()
            key = f"fc:typing:{channel}"
            typists = await self._redis.hgetall(key)
            result = []
            lapsed = []
            for user, value in typists.items():
                until, _, name = as_text(value).partition("|")
                if float(until) > now:
                    result.append({"user": as_text(user), "name": name})
                else:
                    lapsed.append(user)
            if lapsed:
                # The hash lives while anyone in the room types: shed who no longer does, or it
                # would hold everyone who ever typed there (a signal since is not undone: HDEL
                # only the fields still lapsed, in one script).
                await self._shed(keys=[key], args=[now, *lapsed])
            return result
