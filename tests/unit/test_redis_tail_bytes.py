"""The Redis backend's tails (app/bus/redis/tail.py) count the bytes they hold exactly, keep
within `max_bytes` by letting the oldest events of the least recently added-to channel go, and
still answer a cursor inside what is left exactly as Redis would (no Redis needed here)."""

from __future__ import annotations

from app.bus.events import Event
from app.bus.redis.streams import make_cursor
from app.bus.redis.tail import Tails

EPOCH = 7


def event(channel: str, seq: int, size: int) -> Event:
    return Event(channel, "blob", b'"' + b"x" * size + b'"', 0.0, "s", make_cursor(EPOCH, seq))


def held(tails: Tails, channel: str, after_seq: int) -> list[int] | None:
    answer = tails.read(channel, make_cursor(EPOCH, after_seq), 1000)
    return None if answer is None else [e.seq or 0 for e in answer.events]


def test_tails_keep_within_their_bytes_the_oldest_of_the_least_recent_channel_first() -> None:
    one = len(event("a", 1, 1000).json)
    tails = Tails(keep=4, max_bytes=5 * one)
    for channel in ("a", "b"):
        tails.start(channel, EPOCH, 1)
    sent = [event("a", 2, 1000), event("a", 3, 1000), event("b", 2, 1000), event("b", 3, 1000)]
    for e in sent:
        tails.add(e.channel, EPOCH, (e.seq or 0) & 0xFFFF_FFFF, e)
    assert tails.bytes == 4 * one
    tails.add("b", EPOCH, 4, event("b", 4, 1000))
    tails.add("b", EPOCH, 5, event("b", 5, 1000))  # over: "a" (least recently added to) shrinks
    assert tails.bytes == 5 * one
    assert held(tails, "a", 2) == [make_cursor(EPOCH, 3)]
    assert held(tails, "a", 1) is None  # its base moved up: Redis answers that cursor
    assert held(tails, "b", 1) == [make_cursor(EPOCH, s) for s in (2, 3, 4, 5)]
    tails.add("b", EPOCH, 6, event("b", 6, 1000))  # past `keep`: b's oldest leaves, bytes follow
    tails.add("b", EPOCH, 7, event("b", 7, 1000))
    assert tails.bytes == 5 * one
    big = event("b", 8, 2000)
    tails.add("b", EPOCH, 8, big)  # over again: a's last one goes
    assert tails.bytes == 3 * one + len(big.json)
    assert held(tails, "a", 3) == []  # at the head: nothing new, still known
    assert held(tails, "b", 4) == [make_cursor(EPOCH, s) for s in (5, 6, 7, 8)]
    tails.add("b", EPOCH, 10, event("b", 10, 1000))  # a gap restarts b's tail
    assert tails.bytes == 0
    tails.add("b", EPOCH, 11, event("b", 11, 1000))
    tails.appended("b", EPOCH + 1, 1)  # another epoch drops it
    assert tails.bytes == 0
    tails.start("c", EPOCH, 1)
    tails.add("c", EPOCH, 2, event("c", 2, 1000))
    tails.drop("c")
    assert tails.bytes == 0
