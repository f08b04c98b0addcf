"""Catch-up: a new subscription's history, copied before it goes live with no gap and no duplicate.

The subscription is registered (and its channel listened to) before history is read; live events
are held on it while history is copied, in pages paced to the reader's sink, and the held ones
past the last copied cursor follow at the seam.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .backend import Backend
from .events import Event, position
from .hub import Subscription

CATCH_UP_PAGE = 500


async def catch_up(
    backend: Backend,
    sub: Subscription,
    after: int | None,
    on_reset: Callable[[], None] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Copy `sub`'s history after the cursor `after` (None: none, live only) into its sink, then
    let it go live; returns the cursor it starts from. `on_reset` is called before a cursor
    other than 0 turns out to be too old or unknown and kept history is copied from the oldest
    (a read from the start, which it may refuse by raising). `on_ready` is called once the
    first page is read (and paid for), before any of it is copied: the subscription stands."""
    if after is None:
        head = (await backend.read(sub.channel, None, 0)).next
        sub.catching_up = False
        sub.offer(sub.pending)
        sub.last_seq = max(sub.last_seq, head)
        sub.pending.clear()
        return head
    page = max(1, min(CATCH_UP_PAGE, sub.sink.max_events // 2))
    cursor = start = after
    first = True
    while True:
        await sub.sink.wait_for_room(page)
        if _stopped(sub):
            return after
        result = await backend.read(sub.channel, cursor, page)
        if first and result.reset and after and on_reset is not None and _kept(result.events):
            on_reset()
        if first and on_ready is not None:
            on_ready()
        if result.reset:
            # The client's cursor is not one to start after: it starts before the oldest event
            # it is about to be sent. Also past the first page: the log may continue in a new
            # epoch (Redis lost data).
            resumed = position(result.events[0]) - 1 if result.events else result.next
            sub.sink.push_reset(sub.channel, resumed)
            if first:
                start = resumed
        first = False
        for chunk, size in _fitting(result.events, sub.sink.max_bytes):
            await sub.sink.wait_for_room(len(chunk), size)
            if _stopped(sub):
                return after
            sub.sink.push_many(chunk)
        cursor = result.next
        if len(result.events) < page and not result.more and not sub.pending_lost:
            break
        # More history than one page (or a page cut short at a new epoch, which the next read
        # turns into a reset: going live from an old epoch's cursor would silently skip the
        # new one's events), or live events overflowed the holding list while we copied: read
        # on from the backend, which has every durable event. The ephemeral ones held (presence,
        # typing) are in no backend: the newest stay held for the seam, in at most half the
        # holding list, so that the next page's live events still find room.
        sub.pending_lost = False
        ephemeral = [event for event in sub.pending if event.seq is None]
        sub.pending[:] = ephemeral[max(0, len(ephemeral) - sub.max_pending // 2) :]
    # The seam: no await from here on, so nothing can slip between history and live.
    sub.last_seq = cursor
    sub.catching_up = False
    sub.offer(sub.pending)
    sub.pending.clear()
    return start


def _stopped(sub: Subscription) -> bool:
    """The reader is cut off or gone (a function: each await may have changed it)."""
    return sub.sink.overflowed or sub.sink.closed


def _fitting(events: list[Event], max_bytes: int) -> Iterator[tuple[list[Event], int]]:
    """`events` in runs that each fit a reader's outbox in bytes, with each run's size."""
    chunk: list[Event] = []
    size = 0
    for event in events:
        if chunk and size + event.size > max_bytes:
            yield chunk, size
            chunk, size = [], 0
        chunk.append(event)
        size += event.size
    if chunk:
        yield chunk, size


def _kept(events: list[Event]) -> bool:
    return any(event.seq is not None for event in events)
