"""Appends whose reply was lost, without an Idempotency-Key: no retry can find their events, so the
node looks for them once Redis answers, and fences the batch first so that it cannot land later
(app/bus/redis/recovery.py)."""

from __future__ import annotations

import asyncio

import pytest

from app.bus import Bus, BusUnavailable, NullJournal
from app.bus.redis import RedisBackend, RedisIdempotencyStore
from tests.bus.helpers import SENDER, wait_until
from tests.bus.test_idempotency_faults import ArchiveJournal
from tests.fixtures.faultproxy import fault_proxy
from tests.fixtures.redis import RedisServer

pytestmark = pytest.mark.redis


async def test_an_unkeyed_event_whose_append_reply_was_lost_reaches_the_archive(
    redis_server: RedisServer,
) -> None:
    """No Idempotency-Key, so no retry finds it: the node looks for what its lost append kept
    once Redis answers, and archives it."""
    journal = ArchiveJournal()
    with fault_proxy("127.0.0.1", redis_server.port) as proxy:
        backend = RedisBackend(f"redis://{proxy.url_host_port}/0", journal, 1000)
        bus = Bus(backend, RedisIdempotencyStore(backend, ttl=60))
        await bus.start()
        try:
            ch = "room:lost-unkeyed"
            first, _ = await bus.publish(ch, "test", b"0", SENDER)
            proxy.arm(b"lost-unkeyed-mark", "blackhole", direction="down")
            with pytest.raises(BusUnavailable):
                await bus.publish(ch, "test", b'"lost-unkeyed-mark"', SENDER)
            proxy.set_mode("pass")
            with redis_server.client() as direct:
                assert direct.xlen(f"fourcast:ch:{ch}") == 2  # it landed
            mark = b'"lost-unkeyed-mark"'
            await wait_until(lambda: mark in [e.data for e in journal.archived])
            assert not backend.recovery.lost
            with redis_server.client() as direct:  # fenced: a late copy of it would keep nothing
                assert direct.keys("fourcast:fence:*")
        finally:
            proxy.set_mode("pass")
            await bus.stop()
    (found,) = [e for e in journal.archived if e.data == mark]
    assert first.seq is not None
    assert found.seq == first.seq + 1 and found.sender == SENDER


async def test_a_fenced_append_arriving_late_appends_nothing(redis_url: str) -> None:
    """What the recovery's fence does to an append the network held past it: the script, run
    as the held request would run it, finds its batch's fence and keeps nothing."""
    backend = RedisBackend(redis_url, NullJournal(), 1000)
    bus = Bus(backend, RedisIdempotencyStore(backend, ttl=60))
    await bus.start()
    ch = "room:fenced"
    try:
        await bus.publish(ch, "test", b"0", SENDER)
        fence = "fourcast:fence:test:1"
        stream = backend.key(ch)
        args = [1, 1000, "1.5", 60_000, 0, "test", SENDER, b"1", "", b""]
        await backend.redis.set(fence, b"1")
        reply = await backend._append(
            keys=["fourcast:epoch", fence, "fourcast:seq", stream], args=args
        )
        assert reply[1:] == [None]
        assert await backend.redis.xlen(stream) == 1
        await backend.redis.delete(fence)
        reply = await backend._append(
            keys=["fourcast:epoch", fence, "fourcast:seq", stream], args=args
        )
        assert reply[1] == b"0-2" and await backend.redis.xlen(stream) == 2
    finally:
        await bus.stop()


async def test_appends_whose_reply_was_lost_hold_at_most_their_bound_of_data(
    redis_server: RedisServer,
) -> None:
    """While Redis answers nothing, each batch sent (one probe at a time) is kept to be looked
    for later. Their data is bounded (here 100 kB; the oldest is given up, and logged), as the
    publishes waiting for a commit are, and it is counted."""
    bound = 100_000
    with fault_proxy("127.0.0.1", redis_server.port) as proxy:
        backend = RedisBackend(
            f"redis://{proxy.url_host_port}/0", NullJournal(), 1000, lost_max_bytes=bound
        )
        bus = Bus(backend, RedisIdempotencyStore(backend, ttl=60))
        await bus.start()
        try:
            ch = "room:lost-bounded"
            await bus.publish(ch, "test", b"0", SENDER)
            proxy.set_mode("blackhole", direction="down")
            big = b'"' + b"x" * 40_000 + b'"'
            sent = 0
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60  # a bound on failure only
            while sent < 4 and loop.time() < deadline:
                # Most are refused at once, while another call (the reader, the recovery) is
                # the one probing Redis: only a probe is sent, and lost. A refused publisher
                # backs off a little, as a client would, so the probes get their turns.
                with pytest.raises(BusUnavailable):
                    await bus.publish(ch, "test", big, SENDER)
                sent = backend.recovery.given_up + len(backend.recovery.lost)
                await asyncio.sleep(0.01)
            assert sent >= 4, "fewer than 4 batches were sent"
            held = sum(len(d.data) for batch in backend.recovery.lost for d in batch.drafts)
            assert held <= bound and backend.recovery.lost_bytes == held
            assert backend.recovery.given_up >= 2
        finally:
            proxy.set_mode("pass")
            await bus.stop()
