"""Polls near the head of a channel a node listens to are answered from what its reader took
(app/bus/redis/tail.py): no round trip, and exactly what a read of Redis answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from app.bus import Bus, Sink
from app.bus.events import Event
from app.bus.redis import RedisBackend
from app.bus.redis.streams import make_cursor
from app.bus.redis.tail import Tails
from tests.bus.conftest import MakeBus, redis_only
from tests.bus.helpers import collect, publish, publish_one, up_to, wait_until

T = TypeVar("T")


def counting(bus: Bus) -> list[int]:
    """Count the Redis commands `bus`'s backend runs from now on."""
    backend = cast(RedisBackend, bus.backend)
    count = [0]
    command = backend.command

    async def counted(call: Callable[[], Awaitable[T]], *, idempotent: bool = False) -> T:
        count[0] += 1
        return await command(call, idempotent=idempotent)

    backend.command = counted  # type: ignore[method-assign]
    return count


def answer(result: Any) -> tuple[list[int | None], int, bool]:
    return [e.seq for e in result.events], result.next, result.reset


@redis_only
async def test_reads_near_the_head_of_a_listened_channel_are_redis_s_answers_without_a_trip(
    make_bus: MakeBus,
) -> None:
    writer, node, plain = await make_bus(), await make_bus(), await make_bus(redis_tail_events=0)
    ch = "room:tail"
    before = await publish(writer, ch, 3)
    sink = Sink(max_events=1000, max_bytes=1 << 20)
    async with node.subscription(ch, sink, None):  # the node listens from the head on
        live = await publish(writer, ch, 5)
        await collect(sink, up_to(live[-1].seq or 0))
        trips = counting(node)
        cursors = [before[-1].seq, *(e.seq for e in live)]
        held = [answer(await node.read(ch, c, 3)) for c in cursors]
        assert trips[0] == 0
        assert held == [answer(await plain.read(ch, c, 3)) for c in cursors]
        # Further back than the reader started, or from the start: Redis answers.
        assert answer(await node.read(ch, before[0].seq, 3)) == answer(
            await plain.read(ch, before[0].seq, 3)
        )
        assert trips[0] == 1
        # This node's own publish is in its next read, even before its reader takes it.
        for i in range(20):
            head = (await node.read(ch, None, 0)).next
            mine = await publish_one(node, ch, i)
            assert [e.seq for e in (await node.read(ch, head, 10)).events] == [mine.seq]


def event(seq: int, epoch: int = 7) -> Event:
    return Event("room:t", "test", b"{}", 0.0, "service:test", make_cursor(epoch, seq))


def seqs_after(tails: Tails, after: int, limit: int = 10, epoch: int = 7) -> list[int] | None:
    read = tails.read("room:t", make_cursor(epoch, after), limit)
    return None if read is None else [(e.seq or 0) & 0xFFFFFFFFF for e in read.events]


def test_a_tail_knows_only_a_contiguous_run_of_one_epoch_after_an_entry_it_saw() -> None:
    tails = Tails(keep=4)
    assert seqs_after(tails, 5) is None  # not listened
    tails.start("room:t", 7, 5)
    assert seqs_after(tails, 5) == [] and seqs_after(tails, 4) is None
    for seq in range(6, 12):
        tails.add("room:t", 7, seq, event(seq))
    assert tails.events == 4  # bounded: the oldest leave
    assert seqs_after(tails, 7) == [8, 9, 10, 11] and seqs_after(tails, 6) is None
    assert seqs_after(tails, 9, limit=1) == [10]
    assert seqs_after(tails, 11) == [] and seqs_after(tails, 12) is None
    assert seqs_after(tails, 9, epoch=8) is None  # another epoch's cursor: Redis says reset
    tails.add("room:t", 7, 13, event(13))  # a gap: what came before 13 is not known
    assert seqs_after(tails, 11) is None and seqs_after(tails, 13) == []
    tails.add("room:t", 9, 14, event(14, 9))  # a new epoch restarts the tail at its entry
    assert seqs_after(tails, 13) is None and seqs_after(tails, 14, epoch=9) == []
    tails.appended("room:t", 9, 16)  # this node wrote 15 and 16: until read, Redis answers
    tails.add("room:t", 9, 15, event(15, 9))
    assert seqs_after(tails, 14, epoch=9) is None
    tails.add("room:t", 9, 16, event(16, 9))
    assert seqs_after(tails, 14, epoch=9) == [15, 16]
    tails.appended("room:t", 10, 1)  # written in a newer epoch: this tail is of the past
    assert seqs_after(tails, 16, epoch=9) is None
    tails.start("room:t", 7, 0)  # an empty stream: nothing to start after
    assert tails.read("room:t", 0, 10) is None
    off = Tails(keep=0)
    off.start("room:t", 7, 5)
    assert off.read("room:t", make_cursor(7, 5), 10) is None


@redis_only
async def test_a_polled_channel_is_held_and_its_parked_poll_woken_by_another_node(
    make_bus: MakeBus,
) -> None:
    writer, node = await make_bus(), await make_bus()
    ch = "room:held"
    (first,) = await publish(writer, ch, 1)
    polls = node.polls
    marker = 0.0
    cursor = first.seq or 0
    assert polls.answer_now(ch, cursor, marker, 10) is None  # not held yet: read Redis
    await wait_until(lambda: polls.answer_now(ch, cursor, marker, 10) is not None)
    trips = counting(node)
    assert polls.up_to_date(ch, cursor, marker)  # at the head, known from memory
    answers: list[Any] = []
    polls.park(ch, cursor, marker, 10, 30, answers.append)
    (event,) = await publish(writer, ch, 1)
    await wait_until(lambda: bool(answers))
    assert [e.seq for e in answers[0].events] == [event.seq]
    assert trips[0] == 0  # parked and answered with no read of Redis
