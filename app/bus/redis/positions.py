"""Where the reader goes on after it was away: each listened channel's position in its stream.

While the reader follows the streams, an XREAD from a channel's position reads every entry after
it. After the reader was away (its connection lost) that may no longer hold, and it checks before
reading on:
- the epoch changed (Redis may have lost data and numbered streams again): each position goes back
  to where the new epoch begins (`rebase`), and the hub's restart tells subscribers at its first
  entry (live.py);
- the epoch is the same, but the entry at a position is gone: the stream went while the reader was
  away (it expired, and may have been created again, numbered above every old seq), or was trimmed
  past it. The entries between the position and what the stream keeps now may never have been read
  here, so the channel's subscribers get a reset (`recheck`), rather than what follows as if nothing
  lay between.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from .streams import StreamId, entry_epoch, format_id, make_cursor, parse_id
from .tail import Tails

log = logging.getLogger(__name__)

PAGE = 500
Restart = Callable[[str, int], None]
"""Told (channel, cursor) when a channel's subscribers must get a reset and resume after that
cursor: its stream continues in a new epoch, or went while the reader was away."""


class Positions:
    """Mixed into RedisBackend (through LivePath): the attributes below are set by its
    constructor."""

    _reader: Redis
    _positions: dict[str, StreamId]
    _live_epochs: dict[str, int]
    tails: Tails
    on_restart: Restart | None

    if TYPE_CHECKING:  # provided by RedisBackend

        def key(self, channel: str) -> str: ...

    async def _rebase(self, epoch: int) -> None:
        """The epoch changed: move each channel's position back to where the new epoch begins
        (its stream may now be shorter than the position this node had reached)."""
        self.tails.clear()
        for channel, position in list(self._positions.items()):
            start = await self._epoch_start(self.key(channel), epoch)
            if channel in self._positions:
                self._positions[channel] = min(position, start)
        log.warning("redis epoch is now %d: streams may have lost their tails", epoch)

    async def _epoch_start(self, key: str, epoch: int) -> StreamId:
        """Where reading a stream picks up `epoch` from its start: after its last entry of an
        older epoch, or before its first entry. Paged back from the newest entry: more than a
        page may have been written in the new epoch before this node noticed it."""
        end = "+"
        start: StreamId = (0, 0)
        while True:
            entries = await self._reader.xrevrange(key, end, "-", count=PAGE)
            for entry_id, fields in entries or []:  # newest first
                stream_id = parse_id(entry_id)
                if entry_epoch(fields) != epoch:
                    return stream_id
                start = (stream_id[0], stream_id[1] - 1)
            if not entries or len(entries) < PAGE:
                return start
            end = "(" + format_id(parse_id(entries[-1][0]))

    async def _recheck(self, epoch: int) -> None:
        """The reader is back in the same epoch: a channel whose position's entry is gone may
        have had entries this node never read. One pipelined XRANGE per listened channel, only
        when the reader reconnects."""
        listened = [(c, p) for c, p in self._positions.items() if p != (0, 0)]
        if not listened:
            return
        async with self._reader.pipeline(transaction=False) as pipe:
            for channel, position in listened:
                pipe.xrange(self.key(channel), format_id(position), format_id(position), count=1)
            found = await pipe.execute()
        for (channel, position), entries in zip(listened, found, strict=True):
            if entries or self._positions.get(channel) != position:
                continue  # still there, or unlistened (or re-listened) meanwhile
            self.tails.drop(channel)
            log.warning("the stream of %s went while the reader was away: a reset", channel)
            if self.on_restart is not None:
                known = self._live_epochs.get(channel, epoch)
                self.on_restart(channel, make_cursor(known, position[1]))
