"""The epoch: what makes a cursor name one event even after Redis loses data.

Redis can come back with less than it acknowledged: a host crash with `appendfsync everysec`, a
restore from a backup, a failover to a lagging replica, a FLUSHALL. It then numbers streams again
from an older point, and without more a cursor handed out before would name a new, different event.

So every entry carries the epoch it was written in, and the epoch is renewed whenever the Redis
server may have lost data. The marker key `<prefix>:epoch` holds `<epoch>:<run_id>`, the run id of
the redis-server process (random per start, never persisted) that the epoch was set under. Every
append runs as one script that first checks the marker against the server's current run id: a
marker that is missing (flushed) or from another run (a restart, a restore, a failover) gives way
to a new epoch, atomically with the append. Appends, and nodes' readers when they reconnect,
therefore never write or follow an old epoch on a server that may have lost its tail.

Epochs increase: a cursor is `epoch << 36 | seq`, and the SQL archive orders a room's history (and
pages it with `before`) by cursor, so a new epoch must sort after every older one. The node
proposes an epoch above the highest it knows (`KnownEpochs`: the archive's at start, then every
epoch its appends and reader see) plus a random step; the script also goes above the epoch of a
marker left by an earlier run (a restart or a restore keeps it). Nodes racing to set an epoch need
no step: the script runs atomically, so the first sets the marker and the others find it. The step
is for a node that missed an epoch (Redis lost data twice before its reader read the first new
one, or the archive had not received it yet): two proposals from the same knowledge rarely meet.

A restart that lost nothing also starts a new epoch: readers get a `reset` they did not strictly
need, which is the price of never reusing a cursor.

A FLUSHALL leaves the nodes' connections open, so their readers would not notice it by
reconnecting: each new epoch is also written to the stream `<prefix>:epochs` (one entry kept),
which every node's reader follows with its channels (live.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets

from ..backend import BusUnavailable, Journal
from .streams import EPOCH_LIMIT, SEQ_BITS

log = logging.getLogger(__name__)

EPOCH_STEP = 1024
"""A new epoch is 1 to EPOCH_STEP above the highest known: about 130,000 epochs (Redis restarts
or data losses) fit below EPOCH_LIMIT."""

RETRY_MIN = 0.5
RETRY_MAX = 30.0
"""Seconds between tries to remember a new epoch while the database is away."""

CONFIRM = """
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
local marker = redis.call('GET', KEYS[1])
local epoch = nil
local candidate = tonumber(ARGV[1])
if marker then
  local e, owner = string.match(marker, '^(%d+):(%x+)$')
  if owner == run then
    epoch = e
  elseif e and tonumber(e) >= candidate and tonumber(e) + 1 < LIMIT then
    -- A restart, restore or failover kept the marker of the data it holds: go above it even if
    -- this node never knew that epoch (it started since, and the archive lacks the epoch).
    candidate = tonumber(e) + 1
  end
end
if not epoch then
  epoch = string.format('%d', candidate)
  redis.call('SET', KEYS[1], epoch .. ':' .. run)
  redis.call('XADD', KEYS[1] .. 's', 'MAXLEN', '1', '*', 'e', epoch)
end
""".replace("LIMIT", str(EPOCH_LIMIT))
"""Leaves `epoch` (a string) set to the epoch in force for this server run."""

CONFIRM_ONLY = CONFIRM + "return epoch\n"

APPEND = (
    CONFIRM
    + """
local maxlen = ARGV[2]
local ts = ARGV[3]
local ttl = ARGV[4]
local idle = tonumber(ARGV[5])
local out = {epoch}
local a = 6
if redis.call('EXISTS', KEYS[2]) == 1 then
  -- Fenced: the node gave this append up for lost and looked for what it kept (recovery.py).
  for k = 4, #KEYS do out[#out + 1] = false end
  return out
end
-- The highest seq any stream was given: every stream's last seq stays at or below it.
local top = tonumber(redis.call('GET', KEYS[3]) or '0')
local was = top
local touched = {}
for k = 1, #KEYS - 3 do
  local key = KEYS[k + 3]
  local idem = ARGV[a + 3]
  local holder = false
  if idem ~= '' then holder = redis.call('GET', idem) end
  if holder and holder ~= ARGV[a + 4] then
    -- The claim expired while this append was held, and another publish took the key.
    out[#out + 1] = false
  else
    local fields = {'t', ARGV[a], 'f', ARGV[a + 1], 'ts', ts, 'd', ARGV[a + 2], 'e', epoch}
    local id = redis.call('XADD', key, 'NOMKSTREAM', 'MAXLEN', '~', maxlen, '0-*', unpack(fields))
    if not id then
      -- A stream created, or created again once expired: numbered above every seq handed out,
      -- so no cursor of an earlier incarnation names one of its entries, and a reader following
      -- the channel from an old position reads all of them.
      -- Its first entry is marked (`b`): a read from the start knows that nothing before it
      -- was trimmed, though its seq is not 1.
      id = redis.call('XADD', key, 'MAXLEN', '~', maxlen, string.format('0-%d', top + 1),
        'b', '1', unpack(fields))
    end
    local seq = string.match(id, '%-(%d+)$')
    top = math.max(top, tonumber(seq))
    if not touched[key] then
      touched[key] = true
      if idle > 0 then redis.call('PEXPIRE', key, idle) else redis.call('PERSIST', key) end
    end
    if idem ~= '' then
      -- Where the event landed and what it is, in the same step as landing it: a retry after
      -- a lost reply answers with it, even once the stream has trimmed it.
      redis.call('SET', idem, '@' .. epoch .. ':' .. seq .. ':' .. ts
        .. '\\31' .. ARGV[a] .. '\\31' .. ARGV[a + 1] .. '\\31' .. ARGV[a + 2], 'PX', ttl)
    end
    out[#out + 1] = id
  end
  a = a + 5
end
if top > was then redis.call('SET', KEYS[3], string.format('%d', top)) end
return out
"""
)
"""KEYS: the marker, the batch's fence (recovery.py), the highest seq (streams.py), then one
stream per draft. ARGV: a candidate epoch, MAXLEN, ts, the idempotency TTL in ms, the streams'
idle time in ms (0: never expire), then per draft: type, from, data, idempotency key name ('' for
none), and the claim this node holds on that key. Returns the epoch, then each entry's id, or nil
for a draft not appended because its key held another claim or another publish's result."""


class KnownEpochs:
    """The highest epoch this node knows of, and the epoch it proposes after it.

    The database remembers the highest epoch any node saw (app/store/epochs.py): it is what a node
    starting after Redis lost its data, while no node ran, goes above. Written in the background,
    and only when a node meets an epoch above what it last read or wrote there: a new epoch,
    rare; never per append."""

    def __init__(self) -> None:
        self.highest = 0
        self._journal: Journal | None = None
        self._remembered = 0
        """The highest epoch the journal is known to hold."""
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def saw(self, epoch: int) -> None:
        if epoch > self.highest:
            self.highest = epoch
            if epoch > self._remembered:
                self._wanted.set()
            if epoch >= EPOCH_LIMIT - EPOCH_STEP:
                log.error(
                    "redis epoch %d is near its limit %d: new epochs are drawn at random, and "
                    "room history may be ordered wrongly across them",
                    epoch,
                    EPOCH_LIMIT,
                )

    def candidate(self) -> int:
        """An epoch above every one known, for the script to set if Redis lost data."""
        if self.highest + EPOCH_STEP < EPOCH_LIMIT:
            return self.highest + 1 + secrets.randbelow(EPOCH_STEP)
        return 1 + secrets.randbelow(EPOCH_LIMIT - 1)  # exhausted: unique, if not in order

    async def load(self, journal: Journal) -> None:
        """The highest epoch remembered in the database: after Redis lost its data while no node
        ran, nothing else knows it. A database that remembers none yet (new, or from before
        it did) has it from the archive's highest cursor, a scan, once: it is remembered then.
        Best effort: a node starts without it."""
        self._journal = journal
        try:
            remembered = await journal.remembered_epoch()
            if remembered is None:
                self.saw(await journal.highest_cursor() >> SEQ_BITS)
                await journal.remember_epoch(self.highest)
                remembered = self.highest
            self._remembered = remembered
            self.saw(remembered)
        except BusUnavailable as exc:
            log.warning("could not read the highest redis epoch from the database: %s", exc)

    def start(self) -> asyncio.Task[None]:
        """Remember each new epoch in the database, in the background."""
        self._task = asyncio.create_task(self._remember(), name="redis-epochs")
        return self._task

    async def stop(self) -> None:
        """End the background task; a new epoch not yet remembered gets one more try."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.highest > self._remembered and self._journal is not None:
            with contextlib.suppress(BusUnavailable):
                await self._write(self.highest)

    async def _remember(self) -> None:
        delay = RETRY_MIN
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            if self.highest <= self._remembered or self._journal is None:
                continue
            try:
                await self._write(self.highest)
            except BusUnavailable as exc:
                log.warning("could not remember redis epoch %d: %s", self.highest, exc)
                self._wanted.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_MIN

    async def _write(self, epoch: int) -> None:
        assert self._journal is not None
        await self._journal.remember_epoch(epoch)
        self._remembered = max(self._remembered, epoch)
