"""A journal write whose outcome is unknown (the reply to COMMIT lost) does not wedge a channel.

The in-process backend numbers events from its in-memory head. If a COMMIT landed but its reply was
lost, that head is behind the table; numbering from it would fail on the primary key for every
later batch. Instead the channel is reloaded from the journal on its next use, and the events that
did land reach live readers then, in order, once.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus import Bus
from app.bus.backend import BusUnavailable, Draft
from app.bus.events import Event
from app.bus.idempotency import JournalIdempotencyStore, MemoryIdempotencyStore
from app.bus.memory import MemoryBackend
from app.store.journal import SqlJournal


class LostReplyJournal(SqlJournal):
    """The real journal; when `lose_next` is set, the next append is kept and then reported as
    failed, as when the connection drops between COMMIT and its reply."""

    lose_next = False

    async def append(
        self, events: Sequence[Event], keys: Sequence[str | None] | None = None
    ) -> None:
        await super().append(events, keys)
        if self.lose_next:
            self.lose_next = False
            raise BusUnavailable("journal write failed: connection lost during COMMIT")


def draft(n: int) -> Draft:
    return Draft("room:resync", "test", orjson.dumps({"n": n}), "service:test")


async def test_a_lost_commit_reply_resyncs_the_head_and_delivers_what_landed(
    engine: AsyncEngine,
) -> None:
    journal = LostReplyJournal(engine)
    backend = MemoryBackend(journal, history_size=100)
    delivered: list[Event] = []
    await backend.start(delivered.extend)
    [first] = await backend.append([draft(1)])
    journal.lose_next = True
    with pytest.raises(BusUnavailable):
        await backend.append([draft(2)])
    # The next publish neither fails on the primary key nor reuses the cursor of the one that landed.
    [third] = await backend.append([draft(3)])
    assert (first.seq, third.seq) == (1, 3)
    stored = (await backend.read("room:resync", 0, 100)).events
    assert [(e.seq, orjson.loads(e.data)["n"]) for e in stored] == [(1, 1), (2, 2), (3, 3)]
    # Live readers got every kept event once, in order (the one reported as failed included).
    assert [e.seq for e in delivered] == [1, 2, 3]
    await backend.stop()


class RefusingJournal(SqlJournal):
    """The real journal; when `refuse_next` is set, the next append fails before writing."""

    refuse_next = False

    async def append(
        self, events: Sequence[Event], keys: Sequence[str | None] | None = None
    ) -> None:
        if self.refuse_next:
            self.refuse_next = False
            raise BusUnavailable("journal write failed: database is locked")
        await super().append(events, keys)


async def test_an_idempotent_retry_after_a_lost_commit_reply_gets_the_kept_event(
    engine: AsyncEngine,
) -> None:
    journal = LostReplyJournal(engine)
    bus = Bus(MemoryBackend(journal, history_size=100), MemoryIdempotencyStore(ttl=60))
    await bus.start()
    try:
        journal.lose_next = True
        with pytest.raises(BusUnavailable):
            await bus.publish("room:retry", "test", b"1", "service:test", idempotency_key="k")
        event, new = await bus.publish(
            "room:retry", "test", b"1", "service:test", idempotency_key="k"
        )
        assert not new and event.seq == 1
        again, new = await bus.publish(
            "room:retry", "test", b"1", "service:test", idempotency_key="k"
        )
        assert not new and again.seq == 1
        assert [e.seq for e in (await bus.read("room:retry", 0, 100)).events] == [1]
    finally:
        await bus.stop()


async def test_an_idempotent_retry_after_a_write_that_did_not_land_publishes_once(
    engine: AsyncEngine,
) -> None:
    journal = RefusingJournal(engine)
    bus = Bus(MemoryBackend(journal, history_size=100), MemoryIdempotencyStore(ttl=60))
    await bus.start()
    try:
        journal.refuse_next = True
        with pytest.raises(BusUnavailable):
            await bus.publish("room:retry2", "test", b"1", "service:test", idempotency_key="k")
        event, new = await bus.publish(
            "room:retry2", "test", b"1", "service:test", idempotency_key="k"
        )
        assert new and event.seq == 1
        replay, new = await bus.publish(
            "room:retry2", "test", b"1", "service:test", idempotency_key="k"
        )
        assert not new and replay.seq == 1
        assert [e.data for e in (await bus.read("room:retry2", 0, 100)).events] == [b"1"]
    finally:
        await bus.stop()


async def test_an_idempotent_retry_after_the_channel_moved_on_past_its_history_publishes_once(
    engine: AsyncEngine,
) -> None:
    """The retry comes after more events than the bus retains: reading the tentative cursor
    then answers a reset from the oldest event retained, which is not the tentative event. The
    journal, which keeps every event with its key, tells whether it was kept."""
    journal = LostReplyJournal(engine)
    bus = Bus(MemoryBackend(journal, history_size=4), JournalIdempotencyStore(journal, ttl=60))
    await bus.start()
    try:
        journal.lose_next = True
        with pytest.raises(BusUnavailable):
            await bus.publish("room:moved", "test", b'"first"', "service:s", idempotency_key="k")
        for n in range(20):
            await bus.publish("room:moved", "test", str(n).encode(), "service:s")
        event, new = await bus.publish(
            "room:moved", "test", b'"first"', "service:s", idempotency_key="k"
        )
        assert not new and event.seq == 1
        kept = await journal.read("room:moved", 0, 1000)
        assert [e.seq for e in kept if e.data == b'"first"'] == [1]
    finally:
        await bus.stop()
