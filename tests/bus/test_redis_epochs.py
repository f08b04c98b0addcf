"""Live readers through Redis losing its data: a new epoch reaches them whole, after a reset.

Redis comes back empty here (killed, its files removed): what a server without persistence or a
failover to an empty replica leaves. Other nodes go on publishing into the new epoch before this
node's reader has noticed it; the reader must still hand on every event of the new epoch.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import pytest

from app.bus import Bus, Sink
from app.bus.events import Event
from app.bus.redis import RedisBackend
from app.bus.redis.streams import EPOCH_LIMIT, split_cursor
from app.bus.sink import Item
from tests.bus.conftest import MakeBus, redis_only
from tests.bus.helpers import collect, publish_one, publish_retrying, up_to
from tests.fixtures.redis import RedisServer

pytestmark = redis_only

MIB = 1024 * 1024


def roomy_sink() -> Sink:
    return Sink(max_events=100_000, max_bytes=64 * MIB)


class HeldReconnect:
    """Holds a node's reader at its reconnection (its epoch check), until `gate` is set."""

    def __init__(self, bus: Bus) -> None:
        self.backend = cast(RedisBackend, bus.backend)
        self.gate = asyncio.Event()
        self.reached = asyncio.Event()
        self._confirm = self.backend._confirm_epoch
        self.backend._confirm_epoch = self._held  # type: ignore[method-assign]

    async def _held(self, client: object) -> int:
        if self.backend._reader_epoch is not None:  # a reconnection, not the start
            self.reached.set()
            await self.gate.wait()
        return await self._confirm(client)  # type: ignore[arg-type]


def new_epoch_numbers(items: list[Item], epoch: int) -> list[int]:
    return [
        split_cursor(i.seq)[1]
        for i in items
        if isinstance(i, Event) and i.seq is not None and split_cursor(i.seq)[0] == epoch
    ]


async def test_a_new_epoch_longer_than_a_page_reaches_live_readers_whole(
    make_bus: MakeBus, redis_server: RedisServer
) -> None:
    reader_node, writer_node = await make_bus(), await make_bus()
    held = HeldReconnect(reader_node)
    channel = "room:epoch-long"
    sink = roomy_sink()
    async with reader_node.subscription(channel, sink, None):
        old = [await publish_one(writer_node, channel, i) for i in range(5)]
        assert old[-1].seq is not None
        await collect(sink, up_to(old[-1].seq))
        await asyncio.to_thread(redis_server.restart_empty)
        await held.reached.wait()
        # More than one page (500) of the new epoch, before the reader has noticed it.
        first = await publish_retrying(writer_node, channel, 0)
        rest = await asyncio.gather(*(publish_one(writer_node, channel, i) for i in range(1, 600)))
        last = max((first, *rest), key=lambda e: e.seq or 0)
        assert first.seq is not None and last.seq is not None
        epoch = split_cursor(first.seq)[0]
        assert epoch != split_cursor(old[-1].seq)[0]
        held.gate.set()
        items = await collect(sink, up_to(last.seq), timeout=15)
    assert any(isinstance(i, tuple) and i[:2] == ("reset", channel) for i in items)
    assert new_epoch_numbers(items, epoch) == list(range(1, 601))


async def test_a_flushall_reaches_live_readers_and_pollers_of_every_node(
    make_bus: MakeBus, redis_server: RedisServer
) -> None:
    """FLUSHALL leaves every connection open: no reconnection tells a node that the streams are
    numbered again from 1. Its readers must still get a reset and every new event."""
    reader_node, writer_node = await make_bus(), await make_bus()
    channel = "room:epoch-flush"
    sink = roomy_sink()
    async with reader_node.subscription(channel, sink, None):
        old = [await publish_one(writer_node, channel, i) for i in range(5)]
        assert old[-1].seq is not None
        await collect(sink, up_to(old[-1].seq))
        await asyncio.to_thread(redis_server.flush)
        new = [await publish_one(writer_node, channel, i) for i in range(7)]
        assert new[-1].seq is not None
        epoch = split_cursor(new[-1].seq)[0]
        assert epoch != split_cursor(old[-1].seq)[0]
        items = await collect(sink, up_to(new[-1].seq), timeout=15)
        assert any(isinstance(i, tuple) and i[:2] == ("reset", channel) for i in items)
        assert new_epoch_numbers(items, epoch) == list(range(1, 8))
        # A poller on the reader's node, from the old epoch's last cursor: a reset, then all.
        page = await reader_node.read(channel, old[-1].seq, 100)
        assert page.reset
        assert [e.seq for e in page.events] == [e.seq for e in new]


async def test_a_node_warns_when_redis_may_evict_its_streams(
    make_bus: MakeBus, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    with redis_server.client() as client:
        client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with caplog.at_level(logging.WARNING, logger="app.bus.redis.connections"):
            await make_bus()
    finally:
        with redis_server.client() as client:
            client.config_set("maxmemory-policy", "noeviction")
    assert any("allkeys-lru" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app.bus.redis.connections"):
        await make_bus()
    assert not [r for r in caplog.records if "maxmemory-policy" in r.getMessage()]


async def test_after_a_restart_the_new_epoch_goes_above_one_the_node_never_knew(
    make_bus: MakeBus, redis_server: RedisServer
) -> None:
    """Redis restarted with its data, and a marker set before this node started (whose archive
    lacks that epoch): the new epoch still goes above the marker's, so the stream's cursors keep
    increasing (room history is ordered by cursor)."""
    channel = "room:epoch-restart"
    high = EPOCH_LIMIT - 4096
    with redis_server.client() as client:
        run = client.info("server")["run_id"]
        client.set("fourcast:epoch", f"{high}:{run}")
        client.xadd(
            f"fourcast:ch:{channel}",
            {"t": "test", "f": "service:tests", "ts": "1.0", "d": "{}", "e": str(high)},
            id="0-1",
        )
    await asyncio.to_thread(redis_server.restart)
    node = await make_bus()  # knows no epoch: a NullJournal, and Redis's marker is of an old run
    new = await publish_retrying(node, channel, 0)
    assert new.seq is not None
    assert split_cursor(new.seq)[0] > high
    cursors = [e.seq for e in (await node.read(channel, None, 10)).events]
    assert cursors == sorted(cursors) and len(cursors) == 2
