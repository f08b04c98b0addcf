"""Idle streams expire (docs/scaling.md, "Idle streams expire"), and a stream created again is
numbered above every seq its earlier incarnation handed out: a cursor from before gets a `reset`,
never a new event under an old cursor, and a node following the channel from the old numbering
receives every new entry, the first ones included.

A `DEL` of the stream stands for its expiry where the test does not wait for a real one.
"""

from __future__ import annotations

import pytest

from app.bus import Bus, Sink
from app.bus.events import Event
from app.bus.redis.streams import make_cursor, split_cursor
from app.bus.sink import Item
from tests.bus.conftest import MakeBus, redis_only
from tests.bus.helpers import collect, durable, publish_one, publish_retrying, wait_until
from tests.bus.test_redis_epochs import HeldReconnect
from tests.fixtures.redis import RedisServer

pytestmark = redis_only

SEQ_KEY = "fourcast:seq"


def stream(channel: str) -> str:
    return f"fourcast:ch:{channel}"


async def publish_n(bus: Bus, channel: str, n: int, start: int = 0) -> list[Event]:
    """One at a time: each its own append, in order."""
    return [await publish_one(bus, channel, start + i) for i in range(n)]


def cursors(events: list[Event] | list[Item]) -> list[int]:
    return [e.seq for e in events if isinstance(e, Event) and e.seq is not None]


def has(seqs: list[int]) -> object:
    return lambda items: set(seqs) <= set(cursors(durable(items)))


async def assert_reset_to(bus: Bus, channel: str, old: list[Event], new: list[Event]) -> None:
    """Every cursor of the old incarnation reads a reset, then exactly the new events."""
    for event in old:
        assert event.seq is not None
        page = await bus.read(channel, event.seq, 100)
        assert page.reset, f"cursor {split_cursor(event.seq)} read {cursors(page.events)}"
        assert cursors(page.events) == cursors(new)


async def assert_continues(bus: Bus, channel: str, old: list[Event], new: list[Event]) -> None:
    """A node whose reader took the old stream's last entry and then the new stream's first,
    numbered right after it, knows that nothing lies between: it answers a cursor of the old
    incarnation from memory (tail.py) with what truly followed it, each event under its own
    cursor."""
    for i, event in enumerate(old):
        assert event.seq is not None
        page = await bus.read(channel, event.seq, 100)
        assert not page.reset
        assert cursors(page.events) == cursors(old[i + 1 :] + new)


async def test_a_stream_deleted_and_published_again_resets_every_old_cursor(
    make_bus: MakeBus, redis_server: RedisServer
) -> None:
    node, other = await make_bus(), await make_bus()
    channel = "room:expiry-reset"
    old = await publish_n(node, channel, 5)
    with redis_server.client() as client:
        assert client.delete(stream(channel)) == 1  # what the expiry does
    new = await publish_n(other, channel, 3, start=5)
    assert min(cursors(new)) > max(cursors(old)), "numbered again below the old cursors"
    await assert_reset_to(node, channel, old, new)
    await assert_reset_to(other, channel, old, new)
    assert cursors((await node.read(channel, 0, 100)).events) == cursors(new)


@pytest.mark.parametrize("writer", ["other node", "same node"])
async def test_a_node_following_the_channel_across_a_deletion_receives_every_new_event(
    make_bus: MakeBus, redis_server: RedisServer, writer: str
) -> None:
    reader_node = await make_bus()
    writer_node = reader_node if writer == "same node" else await make_bus()
    channel = f"room:expiry-live-{writer.split()[0]}"
    sink = Sink(max_events=1000, max_bytes=1 << 20)
    async with reader_node.subscription(channel, sink, None):
        old = await publish_n(writer_node, channel, 5)
        before = await collect(sink, has(cursors(old)))
        with redis_server.client() as client:
            assert client.delete(stream(channel)) == 1
        new = await publish_n(writer_node, channel, 3, start=5)
        after = await collect(sink, has(cursors(new)), timeout=10)
        # A poll on the listening node, whose tail holds the old events and the new ones after
        # them with nothing between, and on a node that reads Redis.
        await assert_continues(reader_node, channel, old, new)
        await assert_reset_to(await make_bus(), channel, old, new)
    assert cursors(durable(before)) == cursors(old)
    assert cursors(durable(after)) == cursors(new)
    # Nothing was lost to a live reader: no reset, the stream was only idle.
    assert not [i for i in before + after if isinstance(i, tuple) and i[0] == "reset"]


async def test_a_stream_gets_the_idle_time_as_its_expiry_and_goes_when_it_lapses(
    make_bus: MakeBus, redis_server: RedisServer
) -> None:
    node = await make_bus(redis_stream_idle_seconds=0.5)
    channel = "room:expiry-real"
    old = await publish_n(node, channel, 3)
    with redis_server.client() as client:
        assert 0 < client.pttl(stream(channel)) <= 500
        # Redis deletes the stream itself once nothing was appended for the idle time.
        await wait_until(lambda: not client.exists(stream(channel)), timeout=10)
    new = await publish_n(node, channel, 2, start=3)
    assert min(cursors(new)) > max(cursors(old))
    await assert_reset_to(node, channel, old, new)


async def test_an_idle_time_of_0_never_expires_and_clears_an_expiry_set_before(
    make_bus: MakeBus, redis_server: RedisServer
) -> None:
    expiring, never = (
        await make_bus(redis_stream_idle_seconds=60),
        await make_bus(redis_stream_idle_seconds=0),
    )
    client = redis_server.client()
    await publish_n(never, "room:never", 1)
    assert client.pttl(stream("room:never")) == -1
    await publish_n(expiring, "room:switched", 1)
    assert 0 < client.pttl(stream("room:switched")) <= 60_000
    await publish_n(never, "room:switched", 1)
    assert client.pttl(stream("room:switched")) == -1


async def test_streams_written_before_expiry_existed_keep_working_and_expire_safely(
    make_bus: MakeBus, redis_server: RedisServer
) -> None:
    """An upgrade: streams numbered by the earlier script (`XADD 0-*`, no expiry) and no seq
    counter in Redis yet. They read as before; once published to they expire like any other,
    and the stream created again still starts above them."""
    node, reader_node = await make_bus(), await make_bus()
    epoch = split_cursor((await publish_one(node, "room:upgrade-first")).seq or 0)[0]
    channel = "room:upgrade"
    client = redis_server.client()
    client.delete(SEQ_KEY)  # a Redis the earlier version wrote: no counter
    for i in range(10):
        client.xadd(
            stream(channel),
            {"t": "test", "f": "service:test", "ts": "1.0", "d": f'{{"i":{i}}}', "e": epoch},
            id="0-*",
        )
    assert client.pttl(stream(channel)) == -1
    page = await node.read(channel, make_cursor(epoch, 4), 100)
    assert not page.reset and [split_cursor(s)[1] for s in cursors(page.events)] == list(
        range(5, 11)
    )
    sink = Sink(max_events=1000, max_bytes=1 << 20)
    async with reader_node.subscription(channel, sink, make_cursor(epoch, 10)):
        (upgraded,) = await publish_n(node, channel, 1)
        assert upgraded.seq == make_cursor(epoch, 11)  # its numbering goes on
        assert client.pttl(stream(channel)) > 0
        await collect(sink, has(cursors([upgraded])))
        client.delete(stream(channel))
        new = await publish_n(node, channel, 2)
        assert min(cursors(new)) > make_cursor(epoch, 11)
        await collect(sink, has(cursors(new)), timeout=10)
        old = [
            Event(channel, "test", b"{}", 1.0, "service:test", make_cursor(epoch, s))
            for s in (1, 10)
        ]
        await assert_reset_to(node, channel, [*old, upgraded], new)
        await assert_continues(reader_node, channel, [upgraded], new)


async def test_a_reader_away_while_its_stream_went_gets_a_reset_not_a_silent_gap(
    make_bus: MakeBus, redis_server: RedisServer
) -> None:
    """The node's reader lost its connection (Redis stayed up: no new epoch) while events were
    published that it had not read, and the stream then went (expired) and was created again.
    Reconnected, it cannot know what it missed: its subscribers get a reset, not the new events
    as if they followed the last one they had."""
    reader_node, writer_node = await make_bus(), await make_bus()
    held = HeldReconnect(reader_node)
    channel = "room:expiry-away"
    sink = Sink(max_events=1000, max_bytes=1 << 20)
    async with reader_node.subscription(channel, sink, None):
        old = await publish_n(writer_node, channel, 3)
        await collect(sink, has(cursors(old)))
        with redis_server.client() as client:
            client.client_kill_filter(_type="normal")  # the reader's connection too
        await held.reached.wait()
        unread = [await publish_retrying(writer_node, channel, 3 + i) for i in range(2)]
        with redis_server.client() as client:
            assert client.delete(stream(channel)) == 1
        new = await publish_n(writer_node, channel, 2, start=5)
        held.gate.set()
        items = await collect(sink, has(cursors(new)), timeout=10)
    assert cursors(durable(items)) == cursors(new)  # the unread ones went with the stream
    first_new = next(
        i for i, item in enumerate(items) if isinstance(item, Event) and item.seq == new[0].seq
    )
    assert any(isinstance(item, tuple) and item[0] == "reset" for item in items[:first_new]), (
        f"the unread events {cursors(unread)} were skipped silently"
    )


async def test_a_stream_created_above_1_reads_whole_from_the_start_until_it_trims(
    make_bus: MakeBus, redis_server: RedisServer
) -> None:
    """A stream created after others raised the highest seq past `history_size` starts far
    above 1: a read from the start (cursor 0) gets every event with no `reset`, for nothing was
    trimmed; once it holds more than `history_size` events, the oldest no longer count and the
    same read is a `reset`, as on a stream numbered from 1."""
    node = await make_bus(history_size=10)
    await publish_n(node, "room:expiry-busy", 25)  # the highest seq goes above history_size
    channel = "room:expiry-new"
    first = await publish_n(node, channel, 4)
    assert split_cursor(cursors(first)[0])[1] > 10
    page = await node.read(channel, 0, 100)
    assert not page.reset
    assert cursors(page.events) == cursors(first)
    more = await publish_n(node, channel, 10, start=4)  # 14 events: 4 no longer count
    page = await node.read(channel, 0, 100)
    assert page.reset
    assert cursors(page.events) == cursors(first + more)[4:]
