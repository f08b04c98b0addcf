"""The bus: the one event log every transport reads, whichever backend orders it.

It owns idempotent publishing and the seam between history and live delivery for subscriptions;
publishes are kept by `Bus.commits` (app/bus/commit.py) and polls answered by `Bus.polls`
(app/bus/polls.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from .backend import Backend, BusUnavailable, Draft, OutcomeUnknown, ReadResult, event_from_json
from .commit import BusDraining, GroupCommit
from .events import Event, now_ms, position
from .hub import Hub, Subscription
from .idempotency import PENDING, UNKNOWN, IdempotencyStore, settle
from .polls import Polls
from .sink import Sink

log = logging.getLogger(__name__)

CATCH_UP_PAGE = 500
IDEMPOTENCY_WAIT = 5.0


class Bus:
    def __init__(
        self,
        backend: Backend,
        idempotency: IdempotencyStore,
        *,
        commit_linger: float = 0.001,
        commit_max_batch: int = 1000,
        max_pending_publishes: int = 20_000,
        max_read_bytes: int = 0,
    ) -> None:
        self.backend = backend
        self.hub = Hub()
        self._idempotency = idempotency
        self._in_flight_keys: dict[str, asyncio.Future[Event]] = {}
        self.commits = GroupCommit(backend, commit_linger, commit_max_batch, max_pending_publishes)
        """The group commit (app/bus/commit.py); its `on_commit` is told each batch's size."""
        self._last_ephemeral_ts = 0.0
        self._listens: dict[str, asyncio.Future[None]] = {}
        self.polls = Polls(
            self.hub,
            backend,
            self._listen,
            self._release,
            lambda: self.draining,
            max_read_bytes=max_read_bytes,
        )
        """Short and long polls (app/bus/polls.py)."""

    async def start(self) -> None:
        await self.backend.start(self.hub.dispatch)
        self.commits.start()

    async def drain(self) -> None:
        """Shutdown: refuse new publishes, keep what was accepted, and release every reader."""
        await self.commits.drain()
        self.hub.close_all()

    async def stop(self) -> None:
        await self.drain()
        await self.backend.stop()

    @property
    def draining(self) -> bool:
        return self.commits.draining

    @property
    def truncated_pages(self) -> int:
        """Poll answers cut at the byte cap (`poll_max_bytes`)."""
        return self.polls.truncated_pages

    @property
    def idempotency(self) -> IdempotencyStore:
        return self._idempotency

    # Publishing

    async def publish(
        self,
        channel: str,
        type: str,
        data: bytes,
        sender: str,
        *,
        ephemeral: bool = False,
        idempotency_key: str | None = None,
    ) -> tuple[Event, bool]:
        """Accept an event; returns it and whether it is new (False: an idempotent replay)."""
        if self.draining:
            raise BusDraining("server is shutting down")
        if ephemeral:
            # Strictly increasing times: polling readers find new ephemeral events by time.
            ts = max(now_ms(), self._last_ephemeral_ts + 0.001)
            self._last_ephemeral_ts = ts
            event = Event(channel, type, data, ts, sender)
            await self.backend.publish_ephemeral(event)
            return event, True
        if idempotency_key is None:
            return await self.commits.keep(Draft(channel, type, data, sender)), True
        key = f"{sender}\x1f{channel}\x1f{idempotency_key}"
        in_flight = self._in_flight_keys.get(key)
        if in_flight is not None:
            return await asyncio.shield(in_flight), False
        # Registered before the store lookup awaits, so a concurrent retry waits for this one.
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._in_flight_keys[key] = future
        try:
            # Claim the key before publishing: a retry racing on another node waits for this
            # publish's result instead of publishing a second event.
            stored = await self._idempotency.claim(key)
            if stored == PENDING:
                stored = await self._await_other_node(key)
            if stored is not None and stored.startswith(UNKNOWN):
                stored = await settle(self.backend, self._idempotency, key, stored)
            if stored is not None:
                event = event_from_json(stored)
                future.set_result(event)
                return event, False
            try:
                event = await self.commits.keep(Draft(channel, type, data, sender, key))
            except OutcomeUnknown as exc:
                # Kept or not, nobody knows yet: a retry reads which (settle), never guesses.
                await self._idempotency.put(key, UNKNOWN + exc.events[0].json)
                raise
            except BaseException:
                # Perhaps not kept: a retry may try again. The store gives back only a bare
                # claim, never the record of an append whose reply was lost.
                await self._idempotency.release(key)
                raise
            await self._idempotency.put(key, event.json)
            future.set_result(event)
            return event, True
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            del self._in_flight_keys[key]

    async def _await_other_node(self, key: str) -> bytes | None:
        """Another node holds the key: wait (bounded) for the event it publishes."""
        deadline = asyncio.get_running_loop().time() + IDEMPOTENCY_WAIT
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
            stored = await self._idempotency.claim(key)
            if stored != PENDING:
                return stored  # the result, or None: the other publish failed and we now hold it
        raise BusUnavailable("a publish with this Idempotency-Key is still in progress")

    # Reading

    async def read(self, channel: str, after: int | None, limit: int) -> ReadResult:
        return await self.backend.read(channel, after, limit)

    # Subscribing

    async def subscribe(
        self, channel: str, sink: Sink, after: int | None
    ) -> tuple[Subscription, int]:
        """Start delivering `channel` into `sink` from the cursor `after` (None: live only).

        Returns the subscription and the cursor it starts from. History and live events meet with
        no gap and no duplicate: the subscription is registered before history is read, live events
        are held while history is copied, and the held ones past the last copied cursor follow.
        """
        subscription = Subscription(channel, sink, max_pending=sink.max_events)
        self.hub.add(subscription)
        try:
            await self._listen(channel)
            start = await self._catch_up(subscription, after)
        except BaseException:
            await self.unsubscribe(subscription)
            raise
        return subscription, start

    async def _listen(self, channel: str) -> None:
        """Count a local listener (the caller releases it, also on error); the first one asks the
        backend to listen, and the others wait for that: reading history before the backend
        listens would leave a gap between what they read and what arrives live."""
        if not self.hub.acquire(channel):
            pending = self._listens.get(channel)
            if pending is not None:
                await asyncio.wait({pending})
                if pending.cancelled():
                    raise BusUnavailable(f"could not listen to {channel}")
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._listens[channel] = future
        try:
            await self.backend.listen(channel)
            future.set_result(None)
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._listens[channel]

    async def _catch_up(self, sub: Subscription, after: int | None) -> int:
        if after is None:
            head = (await self.read(sub.channel, None, 0)).next
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
            if sub.sink.overflowed or sub.sink.closed:
                return after
            result = await self.read(sub.channel, cursor, page)
            if result.reset:
                # Also past the first page: the log may continue in a new epoch (Redis lost data).
                sub.sink.push_reset(sub.channel)
            if result.reset and first:
                # The client's cursor is not one to start after: it starts before the oldest
                # event it is about to be sent.
                start = position(result.events[0]) - 1 if result.events else result.next
            first = False
            if result.events:
                sub.sink.push_many(result.events)
            cursor = result.next
            if len(result.events) < page and not result.more and not sub.pending_lost:
                break
            # More history than one page (or a page cut short at a new epoch, which the next read
            # turns into a reset: going live from an old epoch's cursor would silently skip the
            # new one's events), or live events overflowed the holding list while we copied: read
            # on from the backend, which has every durable event.
            sub.pending_lost = False
            sub.pending.clear()
        # The seam: no await from here on, so nothing can slip between history and live.
        sub.last_seq = cursor
        sub.catching_up = False
        sub.offer(sub.pending)
        sub.pending.clear()
        return start

    async def unsubscribe(self, subscription: Subscription) -> None:
        self.hub.remove(subscription)
        await self._release(subscription.channel)

    async def _release(self, channel: str) -> None:
        """Drop a local listener counted by `_listen`; the last one stops the backend's."""
        if self.hub.release(channel):
            await self.backend.unlisten(channel)

    @contextlib.asynccontextmanager
    async def subscription(
        self, channel: str, sink: Sink, after: int | None
    ) -> AsyncIterator[Subscription]:
        subscription, _ = await self.subscribe(channel, sink, after)
        try:
            yield subscription
        finally:
            await self.unsubscribe(subscription)

    async def check(self) -> None:
        if self.draining:
            raise BusDraining("server is shutting down")
        await self.backend.check()
