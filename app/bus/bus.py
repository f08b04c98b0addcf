"""The bus: the one event log every transport reads, whichever backend orders it.

It owns idempotent publishing and subscriptions; publishes are kept by `Bus.commits`
(app/bus/commit.py), polls answered by `Bus.polls` (app/bus/polls.py), a subscription's history
copied by `catch_up` (app/bus/catchup.py), and channels listened to by `Listening`
(app/bus/listening.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from .backend import (
    Backend,
    BusUnavailable,
    Draft,
    OutcomeUnknown,
    ReadResult,
    Superseded,
    event_from_json,
)
from .catchup import catch_up
from .commit import BusDraining, GroupCommit
from .events import Event, now_ms
from .hub import Hub, Subscription
from .idempotency import PENDING, UNKNOWN, IdempotencyStore, settle
from .listening import Listening
from .polls import Polls
from .sink import Sink

log = logging.getLogger(__name__)

IDEMPOTENCY_WAIT = 5.0
SUPERSEDED_RETRIES = 3
"""Times a publish whose append was superseded asks its key's holder again before giving up."""


class Bus:
    def __init__(
        self,
        backend: Backend,
        idempotency: IdempotencyStore,
        *,
        commit_linger: float = 0.001,
        commit_max_batch: int = 1000,
        max_pending_publishes: int = 20_000,
        max_pending_bytes: int = 64 << 20,
        max_read_bytes: int = 0,
        max_held_channels: int = 10_000,
        max_ephemeral_bytes: int = 16 << 20,
    ) -> None:
        self.backend = backend
        self.hub = Hub(max_ephemeral_bytes)
        self._idempotency = idempotency
        self._in_flight_keys: dict[str, asyncio.Future[tuple[Event, bool]]] = {}
        self.commits = GroupCommit(
            backend, commit_linger, commit_max_batch, max_pending_publishes, max_pending_bytes
        )
        """The group commit (app/bus/commit.py); its `on_commit` is told each batch's size."""
        self._last_ephemeral_ts = 0.0
        listening = Listening(self.hub, backend)
        self._listen = listening.listen
        self._release = listening.release
        self.polls = Polls(
            self.hub,
            backend,
            self._listen,
            self._release,
            lambda: self.draining,
            max_read_bytes=max_read_bytes,
            max_held_channels=max_held_channels,
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
        self.polls.holds.close()
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
            return (await asyncio.shield(in_flight))[0], False
        # A task, registered before the store lookup awaits, so a concurrent retry waits for it;
        # and shielded: a caller that leaves (cancelled) does not stop it between keeping the
        # event and recording the key, which would let a retry publish the event again.
        in_flight = asyncio.ensure_future(
            self._publish_once(key, Draft(channel, type, data, sender, key))
        )
        self._in_flight_keys[key] = in_flight
        in_flight.add_done_callback(lambda _: self._in_flight_keys.pop(key))
        in_flight.add_done_callback(_retrieve)
        return await asyncio.shield(in_flight)

    async def _publish_once(self, key: str, draft: Draft) -> tuple[Event, bool]:
        for _ in range(SUPERSEDED_RETRIES):
            try:
                return await self._publish_claimed(key, draft)
            except Superseded:
                # Our claim expired while the append was held and another publish took the
                # key: the append was refused, and the key's holder answers this publish.
                continue
        await self._idempotency.release(key)  # gives back nothing of another's: forgets ours
        raise BusUnavailable("a publish with this Idempotency-Key is still in progress")

    async def _publish_claimed(self, key: str, draft: Draft) -> tuple[Event, bool]:
        # Claim the key before publishing: a retry racing on another node waits for this
        # publish's result instead of publishing a second event.
        stored = await self._idempotency.claim(key)
        if stored == PENDING:
            stored = await self._await_other_node(key)
        if stored is not None and stored.startswith(UNKNOWN):
            stored = await settle(self.backend, self._idempotency, key, stored)
        if stored is not None:
            return event_from_json(stored), False
        try:
            event = await self.commits.keep(draft)
        except Superseded:
            raise  # the key is another publish's: nothing of ours to record or give back
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
        return event, True

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
        self,
        channel: str,
        sink: Sink,
        after: int | None,
        on_reset: Callable[[], None] | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> tuple[Subscription, int]:
        """Start delivering `channel` into `sink` from the cursor `after` (None: live only).

        `on_reset`, `on_ready` (with a cursor): see `catch_up`. Returns the subscription and the cursor it starts from.
        History and live events meet with
        no gap and no duplicate: the subscription is registered before history is read, live events
        are held while history is copied, and the held ones past the last copied cursor follow.
        """
        subscription = Subscription(channel, sink, max_pending=sink.max_events)
        self.hub.add(subscription)
        try:
            await self._listen(channel)
            start = await catch_up(self.backend, subscription, after, on_reset, on_ready)
        except BaseException:
            await self.unsubscribe(subscription)
            raise
        return subscription, start

    async def unsubscribe(self, subscription: Subscription) -> None:
        self.hub.remove(subscription)
        await self._release(subscription.channel)

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


def _retrieve(task: asyncio.Future[tuple[Event, bool]]) -> None:
    """Its failure is read: the caller that started it may have left, and no retry waited."""
    if not task.cancelled():
        task.exception()
