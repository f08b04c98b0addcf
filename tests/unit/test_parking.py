"""Where long polls wait (app/bus/parking.py), driven directly with the hub it listens on."""

from __future__ import annotations

import asyncio

from app.bus.events import Event
from app.bus.hub import Hub
from app.bus.parking import ParkedPoll, PollParking
from tests.bus.helpers import wait_until

CH = "public:park"


def setup() -> tuple[Hub, PollParking, list[list[ParkedPoll]]]:
    hub = Hub()
    answered: list[list[ParkedPoll]] = []
    return hub, PollParking(hub, answered.append), answered


def poll(channel: str = CH, deadline: float = 1e12) -> ParkedPoll:
    return ParkedPoll(channel, 0, 0.0, 10, deadline, lambda result: None)


async def test_the_next_event_answers_every_poll_of_its_channel_together() -> None:
    hub, parking, answered = setup()
    polls = [poll() for _ in range(3)]
    other = poll("public:other")
    for p in [*polls, other]:
        parking.park(p)
    assert len(parking) == 4
    hub.dispatch([Event(CH, "t", b"1", 1.0, "service:s", 1)])
    await wait_until(lambda: bool(answered))
    assert answered == [polls] and len(parking) == 1  # the other channel's poll still waits


async def test_a_cancelled_poll_is_forgotten_and_its_listener_released() -> None:
    hub, parking, answered = setup()
    first, second = poll(), poll()
    parking.park(first)
    parking.park(second)
    parking.cancel(first)
    parking.cancel(first)  # twice: no harm
    assert len(parking) == 1
    parking.cancel(second)
    assert len(parking) == 0
    assert hub.acquire(CH)  # the parking's listener is gone: this is the first again
    hub.dispatch([Event(CH, "t", b"1", 1.0, "service:s", 1)])
    await asyncio.sleep(0)  # a loop step for a wake-up callback that must not come
    assert answered == []


async def test_polls_past_their_deadline_are_answered_by_the_sweep() -> None:
    _, parking, answered = setup()
    now = asyncio.get_running_loop().time()
    late, waiting = poll(deadline=now), poll(deadline=now + 3600)
    parking.park(late)
    parking.park(waiting)
    await wait_until(lambda: bool(answered))
    assert answered == [[late]] and len(parking) == 1
