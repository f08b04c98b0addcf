"""Reading a channel's stream: pages after a cursor, within the cursor's epoch, or a reset.

A read continues only within its cursor's epoch. A cursor whose entry is gone or is of another
epoch gets a `reset`: the retained history from its oldest event, each event with its own epoch's
cursor. A cursor whose entry is intact but followed by an entry of another epoch gets a `reset`
too, followed by the events after it. So after Redis lost data, a reader learns it, and no reader
takes a new event for the one it had under the same cursor.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from redis.asyncio import Redis

from ..backend import BackPage, ReadResult
from ..events import Event
from ..failfast import FailFast
from .streams import Entry, decode, entry_epoch, make_cursor, parse_id, split_cursor
from .tail import Tails

log = logging.getLogger(__name__)

T = TypeVar("T")
ANY_EPOCH = -1


class StreamReads:
    """Mixed into RedisBackend: the attributes below are set by its constructor."""

    redis: Redis
    _history: int
    _reading: bool
    tails: Tails
    fail_fast: FailFast

    if TYPE_CHECKING:  # provided by RedisBackend

        def key(self, channel: str) -> str: ...

        async def command(
            self, call: Callable[[], Awaitable[T]], *, idempotent: bool = False
        ) -> T: ...

    def read_held(self, channel: str, after: int, limit: int) -> ReadResult | None:
        """`read` answered from the listened channel's tail (tail.py), while the reader follows
        the streams; None when Redis must be read."""
        if not self._reading or self.fail_fast.down:
            return None
        return self.tails.read(channel, after, limit)

    def head_held(self, channel: str) -> int | None:
        if not self._reading or self.fail_fast.down:
            return None
        return self.tails.head(channel)

    async def read(self, channel: str, after: int | None, limit: int) -> ReadResult:
        key = self.key(channel)
        if after is None:
            count = max(1, min(limit, self._history))
            latest = await self.command(
                lambda: self.redis.xrevrange(key, "+", "-", count=count), idempotent=True
            )
            if not latest:
                return ReadResult([], 0)
            head_seq = parse_id(latest[0][0])[1]
            head = make_cursor(entry_epoch(latest[0][1]), head_seq)
            if not limit:
                return ReadResult([], head)
            floor = head_seq - self._history
            events = [
                e for e in decode(channel, reversed(latest)) if split_cursor(e.seq)[1] > floor
            ]  # type: ignore[arg-type]
            return ReadResult(events, head)
        held = self.read_held(channel, after, limit)
        if held is not None:
            return held  # near the head of a listened channel: no round trip
        epoch, seq = split_cursor(after)

        async def snapshot() -> list[Any]:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xrevrange(key, "+", "-", count=1)
                pipe.xrange(key, "-", "+", count=1)
                pipe.xrange(key, f"0-{seq}", f"0-{seq}", count=1)
                pipe.xrange(key, f"(0-{seq}", "+", count=max(1, limit))
                return await pipe.execute()  # type: ignore[no-any-return]

        newest, oldest, exact, page = await self.command(snapshot, idempotent=True)
        head_seq = parse_id(newest[0][0])[1] if newest else 0
        first = parse_id(oldest[0][0])[1] if oldest else head_seq + 1
        # A stream whose oldest entry is its first (seq 1, or marked `b`: one created above the
        # highest seq, streams.py) has trimmed nothing: a read from the start misses nothing.
        whole = seq == 0 and bool(oldest) and (first == 1 or oldest[0][1].get(b"b") == b"1")
        floor = self._floor(head_seq, first)
        if whole and head_seq - self._history < first:
            floor = 0  # every entry it ever had is retained and counts
        known = seq == 0 or (exact and entry_epoch(exact[0][1]) == epoch)
        if seq > head_seq or seq < floor or not known:
            return await self._reset(channel, key, floor, limit, head_seq, newest)
        expect = None if seq == 0 else epoch
        events, last, crossed = await self._range(channel, key, seq, limit, page, expect)
        if crossed and not events:
            # The next event is of another epoch: what followed this cursor may have been lost.
            # The cursor's own entry is intact, and so is everything before it: the reset goes on
            # from the cursor, not from the oldest event (a reader paging up to the end of an old
            # epoch from the oldest event would otherwise be sent back there, forever).
            return await self._reset(channel, key, seq, limit, head_seq, newest)
        # Stopped at a new epoch: the next read from `last` answers with the reset.
        return ReadResult(events, last if events else after, more=crossed)

    async def retained_below(self, channel: str, before: int | None) -> int:
        key = self.key(channel)
        seq = 0 if before is None else split_cursor(before)[1]

        async def snapshot() -> list[Any]:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xrevrange(key, "+", "-", count=1)
                pipe.xrange(key, "-", "+", count=1)
                if before is not None:
                    pipe.xrange(key, f"0-{seq}", f"0-{seq}", count=1)
                return await pipe.execute()  # type: ignore[no-any-return]

        newest, oldest, *exact = await self.command(snapshot, idempotent=True)
        if not newest or not oldest:
            return 0
        head_seq = parse_id(newest[0][0])[1]
        floor = self._floor(head_seq, parse_id(oldest[0][0])[1])
        if before is None:
            return head_seq - floor
        # Not retained, as `read` would reset: the entry gone, or another epoch's under its seq.
        if not exact[0] or entry_epoch(exact[0][0][1]) != split_cursor(before)[0]:
            return 0
        return max(0, seq - 1 - floor)  # a stream's seqs follow one another (XADD 0-*)

    async def read_back(self, channel: str, before: int | None, limit: int) -> BackPage:
        key = self.key(channel)
        start = "+" if before is None else f"(0-{split_cursor(before)[1]}"

        async def window() -> list[Any]:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xrevrange(key, "+", "-", count=1)
                pipe.xrevrange(key, start, "-", count=max(1, limit))
                return await pipe.execute()  # type: ignore[no-any-return]

        newest, entries = await self.command(window, idempotent=True)
        if not newest or not entries:
            return BackPage([], len(entries), None)
        floor = parse_id(newest[0][0])[1] - self._history
        ids = [parse_id(entry_id) for entry_id, _ in entries]
        kept = [entry for entry, (_, seq) in zip(entries, ids, strict=True) if seq > floor]
        ms, seq = ids[-1]
        more = len(entries) == limit and len(kept) == len(entries) and ms == 0
        older = make_cursor(entry_epoch(entries[-1][1]), seq) if more else None
        return BackPage(decode(channel, kept), len(entries), older)

    def _floor(self, head_seq: int, first: int) -> int:
        """The newest seq no longer retained, of a stream whose newest and oldest entries are
        `head_seq` and `first`: MAXLEN ~ may keep more than history_size entries, but only the
        last history_size count, exactly as in the memory backend."""
        return max(head_seq - self._history, first - 1)

    async def _reset(
        self, channel: str, key: str, floor: int, limit: int, head_seq: int, newest: list[Entry]
    ) -> ReadResult:
        events, last, _ = await self._range(channel, key, floor, limit, None, ANY_EPOCH)
        head = make_cursor(entry_epoch(newest[0][1]), head_seq) if newest else 0
        return ReadResult(events, last if events else head, reset=True)

    async def _range(
        self,
        channel: str,
        key: str,
        after: int,
        limit: int,
        page: list[Entry] | None,
        epoch: int | None,
    ) -> tuple[list[Event], int, bool]:
        """Up to `limit` events after seq `after`, reading past malformed entries; the cursor of
        the last entry read; and whether reading stopped at an entry of an epoch other than
        `epoch` (None: the first entry's; ANY_EPOCH: read across epochs, as a reset does)."""
        events: list[Event] = []
        cursor = after
        last = 0
        while len(events) < limit:
            wanted = limit - len(events)
            if page is None:
                start = f"(0-{cursor}"
                page = await self.command(
                    lambda start=start, wanted=wanted: self.redis.xrange(  # type: ignore[misc]
                        key, start, "+", count=wanted
                    ),
                    idempotent=True,
                )
            page = page[:wanted]
            for entry_id, fields in page:
                ms, seq = parse_id(entry_id)
                if ms != 0:
                    # Added by hand with a time-based id: nothing this backend wrote can follow
                    # it (XADD 0-* now fails), and its seq would send the cursor backwards.
                    log.error("stream %s has a foreign id %r; reading stops there", key, entry_id)
                    return events, last, False
                decoded = decode(channel, [(entry_id, fields)])
                if decoded:  # malformed entries are skipped, and have no epoch to go by
                    entry = entry_epoch(fields)
                    if epoch is None:
                        epoch = entry
                    elif epoch not in (entry, ANY_EPOCH):
                        return events, last, True
                    events.extend(decoded)
                    last = make_cursor(entry, seq)
                cursor = seq
            if len(page) < wanted:
                break
            page = None
        return events, last, False
