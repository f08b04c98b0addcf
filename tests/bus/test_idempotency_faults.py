"""Idempotent publishes through lost traffic, with the fault proxy between the bus and Redis.

When the reply to the append is dropped (the XADD lands, its answer never comes back) the publisher
gets 503; a retry with the same Idempotency-Key answers with the event that landed, and the channel
holds it once. When the request itself never arrives, the retry publishes it, once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import cast

import pytest

from app.bus import Bus, BusUnavailable, Event, NullJournal
from app.bus.backend import Draft
from app.bus.redis import RedisBackend, RedisIdempotencyStore
from tests.bus.helpers import SENDER, wait_until
from tests.fixtures.faultproxy import FaultProxy, fault_proxy
from tests.fixtures.redis import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
async def proxied_bus(
    redis_url: str, redis_server: RedisServer
) -> AsyncIterator[tuple[Bus, FaultProxy]]:
    with fault_proxy("127.0.0.1", redis_server.port) as proxy:
        backend = RedisBackend(f"redis://{proxy.url_host_port}/0", NullJournal(), 1000)
        bus = Bus(backend, RedisIdempotencyStore(backend, ttl=60))
        await bus.start()
        try:
            yield bus, proxy
        finally:
            proxy.set_mode("pass")
            await bus.stop()


async def test_a_retry_after_a_lost_append_reply_gets_the_event_that_landed(
    proxied_bus: tuple[Bus, FaultProxy], redis_server: RedisServer
) -> None:
    bus, proxy = proxied_bus
    backend = cast(RedisBackend, bus.backend)
    store = RedisIdempotencyStore(backend, ttl=60)
    ch = "room:lost-reply"
    await bus.publish(ch, "test", b"0", SENDER)  # connections warm, the epoch set
    # The steps of an idempotent publish, with the append's reply dropped in between.
    key = f"{SENDER}\x1f{ch}\x1fk-1"
    assert await store.claim(key) is None
    proxy.set_mode("blackhole", direction="down")
    with pytest.raises(BusUnavailable):
        await backend.append([Draft(ch, "test", b"1", SENDER, key)])
    with pytest.raises(BusUnavailable):
        await store.release(key)  # the publish gives the claim back... if it can
    with redis_server.client() as direct:
        assert direct.xlen(f"fourcast:ch:{ch}") == 2  # the append did land
    proxy.set_mode("pass")
    await store.release(key)  # ...and even when it can, the landed append is not forgotten
    event, new = await bus.publish(ch, "test", b"1", SENDER, idempotency_key="k-1")
    assert not new and event.data == b"1"
    stored = (await bus.read(ch, 0, 100)).events
    assert [e.data for e in stored] == [b"0", b"1"]
    assert stored[-1].seq == event.seq


async def test_a_retry_after_a_request_that_never_arrived_publishes_once(
    proxied_bus: tuple[Bus, FaultProxy], redis_server: RedisServer
) -> None:
    bus, proxy = proxied_bus
    ch = "room:lost-request"
    await bus.publish(ch, "test", b"0", SENDER)
    proxy.set_mode("reset")
    with pytest.raises(BusUnavailable):
        await bus.publish(ch, "test", b"1", SENDER, idempotency_key="k-2")
    proxy.set_mode("pass")
    event, new = await bus.publish(ch, "test", b"1", SENDER, idempotency_key="k-2")
    assert new
    replay, again = await bus.publish(ch, "test", b"1", SENDER, idempotency_key="k-2")
    assert not again and replay.seq == event.seq
    assert [e.data for e in (await bus.read(ch, 0, 100)).events] == [b"0", b"1"]


class ArchiveJournal(NullJournal):
    """Records what the archive writes."""

    def __init__(self) -> None:
        self.archived: list[Event] = []

    async def archive(self, events: Sequence[Event]) -> None:
        self.archived.extend(events)


async def test_an_event_whose_append_reply_was_lost_reaches_the_archive_on_its_retry(
    redis_server: RedisServer,
) -> None:
    """The append landed, its reply was lost, and with it the archiving (done on the reply):
    the event was in the log, delivered and acknowledged to the retry, and in no SQL archive."""
    journal = ArchiveJournal()
    with fault_proxy("127.0.0.1", redis_server.port) as proxy:
        backend = RedisBackend(f"redis://{proxy.url_host_port}/0", journal, 1000)
        bus = Bus(backend, RedisIdempotencyStore(backend, ttl=60))
        await bus.start()
        try:
            ch = "room:lost-archive"
            await bus.publish(ch, "test", b"0", SENDER)
            proxy.arm(b"lost-archive-mark", "blackhole", direction="down")
            with pytest.raises(BusUnavailable):
                await bus.publish(ch, "test", b'"lost-archive-mark"', SENDER, idempotency_key="k-3")
            proxy.set_mode("pass")
            event, new = await bus.publish(
                ch, "test", b'"lost-archive-mark"', SENDER, idempotency_key="k-3"
            )
            assert not new
        finally:
            proxy.set_mode("pass")
            await bus.stop()  # the archive is flushed
    assert event.seq in {e.seq for e in journal.archived}


def _evalshas(redis_server: RedisServer) -> int:
    """Scripts Redis has run by hash so far (every append is one): a held append's arrival."""
    with redis_server.client() as direct:
        stats = direct.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0))


async def _other_node(redis_url: str) -> Bus:
    backend = RedisBackend(redis_url, NullJournal(), 1000)
    bus = Bus(backend, RedisIdempotencyStore(backend, ttl=60))
    await bus.start()
    return bus


def _claim_expires(redis_server: RedisServer, name: str) -> None:
    """What the claim's 30 s TTL does during a long partition, at once."""
    with redis_server.client() as direct:
        held = direct.get(name)
        assert held is not None and held.startswith(b"~"), held  # this node's claim
        direct.delete(name)


async def test_an_append_held_past_its_claim_does_not_publish_a_second_time(
    proxied_bus: tuple[Bus, FaultProxy], redis_server: RedisServer, redis_url: str
) -> None:
    """A partition holds a node's append longer than its claim lives: the node gives up, a retry
    on another node takes the key and publishes, then the held append reaches Redis. It finds
    the key another publish's and appends nothing."""
    bus, proxy = proxied_bus
    other = await _other_node(redis_url)
    ch = "room:held-append"
    try:
        await bus.publish(ch, "test", b"0", SENDER)
        proxy.arm(b"k-held", "blackhole", direction="up")  # the claim passes, the append is held
        with pytest.raises(BusUnavailable):
            await bus.publish(ch, "test", b"1", SENDER, idempotency_key="k-held")
        _claim_expires(redis_server, f"fourcast:idem:{SENDER}\x1f{ch}\x1fk-held")
        event, new = await other.publish(ch, "test", b"1", SENDER, idempotency_key="k-held")
        assert new
        before = _evalshas(redis_server)
        proxy.set_mode("pass")  # the held append lands now
        await wait_until(lambda: _evalshas(redis_server) > before)
        with redis_server.client() as direct:
            assert direct.xlen(f"fourcast:ch:{ch}") == 2
        replay, again = await bus.publish(ch, "test", b"1", SENDER, idempotency_key="k-held")
        assert not again and replay.seq == event.seq
        assert cast(RedisBackend, bus.backend).claims == {}
    finally:
        await other.stop()


async def test_a_publish_whose_held_append_was_superseded_answers_with_the_event_kept(
    redis_server: RedisServer, redis_url: str
) -> None:
    """The same partition, with the node still waiting when its append lands (no timeout): the
    append is refused, and the publish answers with the event the other node kept."""
    other = await _other_node(redis_url)
    with fault_proxy("127.0.0.1", redis_server.port) as proxy:
        backend = RedisBackend(
            f"redis://{proxy.url_host_port}/0", NullJournal(), 1000, command_timeout=60.0
        )
        bus = Bus(backend, RedisIdempotencyStore(backend, ttl=60))
        await bus.start()
        ch = "room:superseded"
        try:
            await bus.publish(ch, "test", b"0", SENDER)
            proxy.arm(b"k-superseded", "blackhole", direction="up")
            waiting = asyncio.ensure_future(
                bus.publish(ch, "test", b"1", SENDER, idempotency_key="k-superseded")
            )
            await wait_until(lambda: proxy.fired)
            name = f"fourcast:idem:{SENDER}\x1f{ch}\x1fk-superseded"
            await wait_until(lambda: name in backend.claims)
            _claim_expires(redis_server, name)
            event, new = await other.publish(
                ch, "test", b"1", SENDER, idempotency_key="k-superseded"
            )
            assert new
            proxy.set_mode("pass")
            answer, fresh = await waiting
            assert not fresh and answer.seq == event.seq
            with redis_server.client() as direct:
                assert direct.xlen(f"fourcast:ch:{ch}") == 2
            assert backend.claims == {}
        finally:
            proxy.set_mode("pass")
            await bus.stop()
            await other.stop()


async def test_a_retry_after_the_landed_event_was_trimmed_does_not_publish_again(
    redis_server: RedisServer,
) -> None:
    """The append landed, its reply was lost, and more than `history_size` events reached the
    channel before the retry: the event is trimmed from the stream, but it was kept, so the
    retry answers with it (and archives it) instead of publishing it a second time."""
    journal = ArchiveJournal()
    with fault_proxy("127.0.0.1", redis_server.port) as proxy:
        backend = RedisBackend(f"redis://{proxy.url_host_port}/0", journal, 5)
        bus = Bus(backend, RedisIdempotencyStore(backend, ttl=60))
        await bus.start()
        ch = "room:trimmed-retry"
        try:
            first, _ = await bus.publish(ch, "test", b"0", SENDER)
            assert first.seq is not None
            landed = first.seq + 1
            proxy.arm(b"trimmed-mark", "blackhole", direction="down")
            with pytest.raises(BusUnavailable):
                await bus.publish(ch, "test", b'"trimmed-mark"', SENDER, idempotency_key="k-t")
            proxy.set_mode("pass")
            for i in range(1, 201):  # MAXLEN ~ trims by whole nodes: far past history_size
                await bus.publish(ch, "test", str(i).encode(), SENDER)
            with redis_server.client() as direct:
                oldest = direct.xrange(f"fourcast:ch:{ch}", "-", "+", count=1)
                # The landed event is gone from the stream.
                assert oldest[0][0] != f"0-{landed & ((1 << 36) - 1)}".encode()
            event, new = await bus.publish(
                ch, "test", b'"trimmed-mark"', SENDER, idempotency_key="k-t"
            )
            assert not new and event.data == b'"trimmed-mark"'
            with redis_server.client() as direct:
                entries = direct.xrange(f"fourcast:ch:{ch}", "-", "+")
            assert b'"trimmed-mark"' not in [fields[b"d"] for _, fields in entries]
            assert event.seq == landed
        finally:
            proxy.set_mode("pass")
            await bus.stop()
    assert event.seq in {e.seq for e in journal.archived}


async def test_a_pointer_written_before_pointers_recorded_the_event_is_read_from_the_stream(
    proxied_bus: tuple[Bus, FaultProxy], redis_server: RedisServer
) -> None:
    """An upgrade: a bare `@<epoch>:<seq>` left by an older node still answers a retry with its
    event while the stream keeps it, and lets the retry publish when it is gone."""
    bus, _ = proxied_bus
    ch = "room:old-pointer"
    kept = await bus.publish(ch, "test", b'"kept"', SENDER)
    epoch, seq = kept[0].seq >> 36, kept[0].seq & ((1 << 36) - 1)
    with redis_server.client() as direct:
        direct.set(f"fourcast:idem:{SENDER}\x1f{ch}\x1fk-old", f"@{epoch}:{seq}")
        direct.set(f"fourcast:idem:{SENDER}\x1f{ch}\x1fk-gone", f"@{epoch}:{seq + 100}")
    event, new = await bus.publish(ch, "test", b'"kept"', SENDER, idempotency_key="k-old")
    assert not new and event.seq == kept[0].seq
    event, new = await bus.publish(ch, "test", b'"again"', SENDER, idempotency_key="k-gone")
    assert new and event.seq == kept[0].seq + 1
