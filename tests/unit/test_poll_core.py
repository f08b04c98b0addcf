"""The poll core (app/web/poll.py) and where long polls wait (app/bus/polls.py, parking.py),
driven directly: a real bus on the in-memory backend, and the same backend without its
`SyncReads` capability standing in for one that must be awaited (as Redis)."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import time
from collections.abc import AsyncIterator, Sequence
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from app.bus import Bus, BusUnavailable, NullJournal, ReadResult, SyncReads
from app.bus.backend import Deliver, Draft
from app.bus.events import Event
from app.bus.idempotency import MemoryIdempotencyStore
from app.bus.memory import MemoryBackend
from app.bus.parking import ParkedPoll
from app.identity.budgets import Budgets
from app.identity.limits import ConnectionLimits
from app.identity.principal import ANONYMOUS, Principal
from app.identity.tokens import TokenService
from app.observability.metrics import Metrics
from app.settings import Settings
from app.web import pollwait
from app.web.poll import PollAnswer, PollCore, Waiting
from app.web.pollwait import Parked
from tests.bus.helpers import wait_until

SERVICE = Principal("service", "svc", "svc")
PERSON = Principal("user", "u1", "Una")
CH = "public:core"


class AwaitedBackend:
    """The in-memory backend with its reads awaited only: no `read_now`, no `head_now`."""

    def __init__(self) -> None:
        self.inner = MemoryBackend(NullJournal(), history_size=100)
        self.reads = 0
        self.fail = False

    async def start(self, deliver: Deliver) -> None:
        await self.inner.start(deliver)

    async def stop(self) -> None:
        await self.inner.stop()

    async def append(self, drafts: Sequence[Draft]) -> list[Event]:
        return await self.inner.append(drafts)

    async def publish_ephemeral(self, event: Event) -> None:
        await self.inner.publish_ephemeral(event)

    async def read(self, channel: str, after: int | None, limit: int) -> ReadResult:
        self.reads += 1
        if self.fail:
            raise BusUnavailable("redis is down")
        return await self.inner.read(channel, after, limit)

    async def listen(self, channel: str) -> None:
        return None

    async def unlisten(self, channel: str) -> None:
        return None

    async def check(self) -> None:
        return None


class HeldBackend(AwaitedBackend):
    """One that delivers only what it listens to, and holds the listened channels' newest
    events (as Redis, app/bus/redis/tail.py): `HeldReads`."""

    def __init__(self) -> None:
        super().__init__()
        self.listened: set[str] = set()

    async def listen(self, channel: str) -> None:
        self.listened.add(channel)

    async def unlisten(self, channel: str) -> None:
        self.listened.discard(channel)

    def read_held(self, channel: str, after: int, limit: int) -> ReadResult | None:
        assert channel in self.listened, "read from memory while not listening"
        return self.inner.read_now(channel, after, limit)

    def head_held(self, channel: str) -> int | None:
        assert channel in self.listened, "head from memory while not listening"
        return self.inner.head_now(channel)


class Presence:
    def __init__(self) -> None:
        self.touches: list[tuple[str, str, str, float]] = []
        self.member = object()

    def touch_now(
        self, channel: str, principal: Principal, transport: str, hold: float, *, ip: str = ""
    ) -> tuple[object, None]:
        self.touches.append((channel, principal.id, transport, hold))
        return self.member, None

    def renew(
        self, member: object, channel: str, principal: Principal, transport: str, *, ip: str = ""
    ) -> None:
        assert member is self.member  # the member the poll's start found
        self.touches.append((channel, principal.id, transport, 0))


@pytest.fixture(params=["sync", "awaited", "held"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    backends = {"sync": lambda: MemoryBackend(NullJournal(), history_size=100)}
    backends.update(awaited=AwaitedBackend, held=HeldBackend)
    backend: Any = backends[request.param]()
    bus = Bus(backend, MemoryIdempotencyStore(ttl=60), commit_linger=0)
    await bus.start()
    yield bus
    await bus.stop()


def core_for(bus: Bus, **settings: Any) -> tuple[PollCore, Any]:
    configured = Settings(database_url="", **settings)
    services = SimpleNamespace(
        bus=bus,
        metrics=Metrics(),
        settings=configured,
        presence=Presence(),
        draining=False,
        connections=ConnectionLimits(
            configured.max_connections_per_user,
            configured.max_connections_per_ip,
            configured.max_connections,
        ),
        budgets=Budgets.for_settings(configured),
        tokens=TokenService("s" * 48, api_keys={}, session_ttl=600, ticket_ttl=60),
    )
    return PollCore(services), services  # type: ignore[arg-type]


async def publish(bus: Bus, n: int, channel: str = CH) -> list[Event]:
    return [(await bus.publish(channel, "t", b'{"n":%d}' % i, "service:svc"))[0] for i in range(n)]


async def ask(core: PollCore, **params: Any) -> PollAnswer:
    """The core's answer, given now or later through `done`."""
    later: asyncio.Future[PollAnswer] = asyncio.get_running_loop().create_future()
    args = {
        "channel": CH,
        "after": None,
        "limit": None,
        "wait": None,
        "principal": SERVICE,
        "ip": "127.0.0.1",
    }
    args.update(params)
    answer = core.answer(**args, done=later.set_result)
    if isinstance(answer, Waiting):
        return await asyncio.wait_for(later, 10)
    return answer


def body(answer: PollAnswer) -> dict[str, Any]:
    return orjson.loads(answer.body)  # type: ignore[no-any-return]


async def test_a_short_poll_answers_events_after_the_cursor(bus: Bus) -> None:
    core, services = core_for(bus)
    events = await publish(bus, 3)
    answer = await ask(core, after=str(events[0].seq), limit="5")
    assert answer.status == 200 and answer.headers == ((b"content-type", b"application/json"),)
    got = body(answer)
    assert [e["id"] for e in got["events"]] == [e.cursor for e in events[1:]]
    assert got["next"].startswith(f"{events[-1].seq}_") and got["reset"] is False
    assert services.metrics._answered["shortpoll"] == 1


@pytest.mark.parametrize(
    ("params", "status", "code", "message"),
    [
        ({"limit": "x"}, 400, "bad_parameter", "limit must be an integer"),
        ({"limit": "0"}, 400, "bad_parameter", "limit must be between 1 and "),
        ({"wait": "61"}, 400, "bad_parameter", "wait must be between 0 and 60"),
        ({"after": "nope"}, 400, "invalid_cursor", "cursor is not one this server issued"),
        ({"channel": "bad channel"}, 400, "invalid_channel", "channel must match"),
        ({"channel": "room:x", "principal": ANONYMOUS}, 401, "unauthorized", "sign in"),
        ({"channel": "user:other", "principal": PERSON}, 403, "forbidden", "user channels"),
    ],
)
async def test_bad_requests_get_the_apps_error_bodies(
    bus: Bus, params: dict[str, Any], status: int, code: str, message: str
) -> None:
    core, _ = core_for(bus)
    answer = await ask(core, **params)
    assert answer.status == status
    error = body(answer)["error"]
    assert error["code"] == code and error["message"].startswith(message)


async def test_a_long_poll_is_parked_then_woken_by_the_next_event(bus: Bus) -> None:
    core, _ = core_for(bus)
    head = (await publish(bus, 1))[-1].seq
    asked = asyncio.ensure_future(ask(core, after=str(head), wait="30"))
    await wait_until(lambda: bus.polls.parked == 1)
    (event,) = await publish(bus, 1)
    answer = await asked
    assert [e["id"] for e in body(answer)["events"]] == [event.cursor]
    assert bus.polls.parked == 0


@pytest.mark.parametrize("lapse", ["signed out", "expired"])
async def test_a_long_poll_whose_credential_lapses_while_it_waits_answers_401(
    bus: Bus, lapse: str
) -> None:
    core, services = core_for(bus)
    channel = f"user:{PERSON.id}"
    expires_at = time.time() + (0.2 if lapse == "expired" else 600)
    person = dataclasses.replace(PERSON, expires_at=expires_at, issued_at=time.time())
    head = (await publish(bus, 1, channel))[-1].seq
    asked = asyncio.ensure_future(
        ask(core, channel=channel, principal=person, after=str(head), wait="30")
    )
    await wait_until(lambda: bus.polls.parked == 1 or asked.done())
    if lapse == "signed out":
        services.tokens.revocations.apply(PERSON.id, time.time())
    else:
        await wait_until(lambda: time.time() > expires_at)
    await publish(bus, 1, channel)
    answer = await asked
    code = "token_revoked" if lapse == "signed out" else "token_expired"
    assert (answer.status, body(answer)["error"]["code"]) == (401, code)
    # The refused poll's lease runs from its answer, as at the end of any poll.
    assert services.presence.touches[-1] == (channel, PERSON.id, "longpoll", 0)
    # The same event is there for a reader whose credential stands.
    assert len(body(await ask(core, channel=channel, after=str(head)))["events"]) == 1


@pytest.mark.parametrize("by_cookie", [False, True])
async def test_a_long_poll_waiting_when_its_person_signs_out_is_answered_at_the_sign_out(
    bus: Bus, by_cookie: bool
) -> None:
    """Not at its wait's end (30 s; the answer is awaited 10 s at most): a sign-out finds the
    person's parked polls (or, awaited from the backend, the poll's watch)."""
    core, services = core_for(bus)
    channel = f"user:{PERSON.id}"
    person = dataclasses.replace(PERSON, issued_at=time.time(), via_cookie=by_cookie)
    head = (await publish(bus, 1, channel))[-1].seq
    asked = asyncio.ensure_future(
        ask(core, channel=channel, principal=person, after=str(head), wait="30")
    )
    other: list[PollAnswer] = []
    theirs = (await publish(bus, 1))[-1].seq
    staying = core.answer(CH, str(theirs), None, "30", SERVICE, "127.0.0.1", other.append)
    assert isinstance(staying, Waiting)
    await wait_until(lambda: bus.polls.parked == 2)
    services.tokens.revocations.apply(PERSON.id, time.time())
    answer = await asked
    # A cookie that signed out reads as no one, who may not read a user channel.
    assert answer.status == 401 and (by_cookie or body(answer)["error"]["code"] == "token_revoked")
    assert services.presence.touches[-1] == (channel, PERSON.id, "longpoll", 0)
    assert bus.polls.parked == 1 and other == []  # another caller's poll waits on
    staying.cancel()


async def test_sign_outs_in_a_burst_are_answered_by_one_walk_of_the_parked_polls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first sign-out walks the parked polls at once; those after it, within the interval,
    wait for one more walk, which answers them all. (The interval is made an hour, so that no
    pause of a busy machine can let a second sign-out walk on its own; the gathered walk is then
    run by hand, as its timer would.)"""
    monkeypatch.setattr(pollwait, "SWEEP_INTERVAL", 3600.0)
    bus = Bus(MemoryBackend(NullJournal(), history_size=100), MemoryIdempotencyStore(ttl=60))
    await bus.start()
    try:
        core, services = core_for(bus)
        walks: list[int] = []
        walk = bus.polls.end
        bus.polls.end = lambda select: (walks.append(1), walk(select))  # type: ignore[method-assign]
        people = [dataclasses.replace(PERSON, id=f"u{i}", issued_at=time.time()) for i in range(4)]
        asked = []
        for person in people:
            channel = f"user:{person.id}"
            head = (await publish(bus, 1, channel))[-1].seq
            asked.append(
                asyncio.ensure_future(
                    ask(core, channel=channel, principal=person, after=str(head), wait="30")
                )
            )
        await wait_until(lambda: bus.polls.parked == 4)
        for person in people:
            services.tokens.revocations.apply(person.id, time.time())
        assert len(walks) == 1 and bus.polls.parked == 3  # the first, at once
        assert core.sign_outs.timer is not None and len(core.sign_outs.users) == 3
        core.sign_outs.timer.cancel()
        core.sign_outs.walk()  # what the timer would run
        answers = await asyncio.gather(*asked)
        assert [answer.status for answer in answers] == [401] * 4
        assert len(walks) == 2
    finally:
        await bus.stop()


async def test_a_cancelled_long_poll_is_forgotten_and_never_answered(bus: Bus) -> None:
    core, _ = core_for(bus)
    head = (await publish(bus, 1))[-1].seq
    answers: list[PollAnswer] = []
    waiting = core.answer(CH, str(head), None, "30", SERVICE, "127.0.0.1", answers.append)
    assert isinstance(waiting, Waiting)
    await wait_until(lambda: bus.polls.parked == 1)
    waiting.cancel()
    await wait_until(lambda: bus.polls.parked == 0)  # at once, or when its task ends (awaited)
    await publish(bus, 1)
    await asyncio.sleep(0)  # a loop step for any wake-up callback that should not come
    assert answers == []


@pytest.mark.parametrize("end", ["answered", "cancelled"])
async def test_a_parked_poll_leaves_no_cycle_for_the_collector(bus: Bus, end: str) -> None:
    core, _ = core_for(bus)
    head = (await publish(bus, 1))[-1].seq
    gc.collect()
    gc.disable()  # no collection may free a cycle before it is looked for
    try:
        answers: list[PollAnswer] = []
        waiting = core.answer(CH, str(head), None, "30", SERVICE, "127.0.0.1", answers.append)
        assert isinstance(waiting, Waiting)
        await wait_until(lambda: bus.polls.parked == 1)
        if end == "answered":
            await publish(bus, 1)
            await wait_until(lambda: len(answers) == 1)
        else:
            waiting.cancel()
            await wait_until(lambda: bus.polls.parked == 0)
        del waiting
        gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds is kept in gc.garbage
        gc.collect()
        cycles = [o for o in gc.garbage if isinstance(o, (Parked, ParkedPoll, Waiting))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cycles == []


async def test_polls_of_one_cursor_share_one_read_when_woken() -> None:
    backend = AwaitedBackend()
    bus = Bus(backend, MemoryIdempotencyStore(ttl=60), commit_linger=0)  # type: ignore[arg-type]
    await bus.start()
    try:
        core, _ = core_for(bus)
        head = (await publish(bus, 1))[-1].seq
        asked = [asyncio.ensure_future(ask(core, after=str(head), wait="30")) for _ in range(5)]
        await wait_until(lambda: bus.polls.parked == 5)
        before = backend.reads
        await publish(bus, 1)
        answers = await asyncio.gather(*asked)
        assert all(len(body(a)["events"]) == 1 for a in answers)
        assert backend.reads - before == 1
    finally:
        await bus.stop()


async def test_a_backend_that_cannot_read_answers_503_naming_a_request_id() -> None:
    backend = AwaitedBackend()
    bus = Bus(backend, MemoryIdempotencyStore(ttl=60), commit_linger=0)  # type: ignore[arg-type]
    await bus.start()
    try:
        core, _ = core_for(bus)
        backend.fail = True
        answer = await ask(core, after="0")
        assert answer.status == 503 and (b"retry-after", b"2") in answer.headers
        error = body(answer)["error"]
        # The reason is logged under the request id, which the client can quote.
        assert error["code"] == "unavailable" and error["message"] == "event log unavailable"
        assert (b"x-request-id", error["request_id"].encode()) in answer.headers
    finally:
        await bus.stop()


async def test_a_long_poll_times_out_empty(bus: Bus) -> None:
    core, _ = core_for(bus)
    head = (await publish(bus, 1))[-1].seq
    answer = await ask(core, after=str(head), wait="1")
    assert body(answer)["events"] == [] and bus.polls.parked == 0


async def test_a_persons_poll_renews_their_lease_without_awaiting(bus: Bus) -> None:
    core, services = core_for(bus)
    channel = f"user:{PERSON.id}"
    await ask(core, channel=channel, principal=PERSON)  # no cursor: a look, not a lease
    assert services.presence.touches == []
    await ask(core, channel=channel, principal=PERSON, after="0", wait="1")
    assert services.presence.touches == [
        (channel, PERSON.id, "longpoll", 1),
        (channel, PERSON.id, "longpoll", 0),  # the lease runs from the end of the poll
    ]


def test_only_the_in_memory_backend_reads_without_awaiting() -> None:
    assert isinstance(MemoryBackend(NullJournal(), history_size=1), SyncReads)
    assert not isinstance(AwaitedBackend(), SyncReads)


async def test_reads_from_the_start_spend_the_readers_budget() -> None:
    bus = Bus(MemoryBackend(NullJournal(), history_size=100), MemoryIdempotencyStore(ttl=60))
    await bus.start()
    try:
        core, _ = core_for(bus, read_all_rate=0.001, read_all_burst=2)
        await publish(bus, 3)
        for _ in range(2):
            assert (await ask(core, principal=ANONYMOUS, channel=CH)).status == 200
        refused = await ask(core, principal=ANONYMOUS, channel=CH)
        assert refused.status == 429 and body(refused)["error"]["code"] == "rate_limited"
        # Following the log by its cursor spends nothing; a service has no budget at all.
        assert (await ask(core, principal=ANONYMOUS, after="1")).status == 200
        assert (await ask(core, principal=SERVICE)).status == 200
    finally:
        await bus.stop()


async def test_live_ephemeral_events_at_cursor_zero_spend_no_budget() -> None:
    """A person following a room with no events kept yet holds cursor 0 while others join: the
    presence events it reads there are live, not history, and never get it a 429."""
    bus = Bus(MemoryBackend(NullJournal(), history_size=100), MemoryIdempotencyStore(ttl=60))
    await bus.start()
    try:
        core, _ = core_for(bus, read_all_rate=0.001, read_all_burst=2)
        cursor = body(await ask(core, principal=PERSON, after="0"))["next"]
        assert cursor.startswith("0_")
        for n in range(4):  # twice the burst
            waiting = asyncio.ensure_future(ask(core, principal=PERSON, after=cursor, wait="30"))
            await wait_until(lambda: bus.polls.parked == 1)
            await bus.publish(CH, "presence.join", b'{"n":%d}' % n, "service:x", ephemeral=True)
            answer = await waiting
            assert answer.status == 200, body(answer)
            got = body(answer)
            assert [e["type"] for e in got["events"]] == ["presence.join"]
            cursor = got["next"]
            assert cursor.startswith("0_")
        # The budget is whole for the first kept event, read at cursor 0.
        await publish(bus, 1)
        followed = body(await ask(core, principal=PERSON, after=cursor))
        assert [e["id"] for e in followed["events"]] == ["1"]
    finally:
        await bus.stop()


async def test_a_held_long_poll_counts_against_the_connection_caps(bus: Bus) -> None:
    core, services = core_for(bus, max_connections_per_ip=1)
    head = (await publish(bus, 1))[-1].seq
    first = core.answer(CH, str(head), None, "30", SERVICE, "10.0.0.1", lambda _: None)
    assert isinstance(first, Waiting) and services.connections.open == 1
    refused = await ask(core, after=str(head), wait="30", ip="10.0.0.1")
    assert refused.status == 429
    assert (await ask(core, after=str(head), wait="1", ip="10.0.0.2")).status == 200
    first.cancel()
    assert services.connections.open == 0  # released once, however the poll ends


async def test_a_page_over_the_byte_cap_is_cut_and_marked_truncated() -> None:
    bus = Bus(
        MemoryBackend(NullJournal(), history_size=100),
        MemoryIdempotencyStore(ttl=60),
        max_read_bytes=150,
    )
    await bus.start()
    try:
        core, _ = core_for(bus)
        events = await publish(bus, 5)
        got = body(await ask(core, after="0"))
        assert got["truncated"] is True and 0 < len(got["events"]) < 5
        seen = got["events"]
        while got.get("truncated"):  # each page continues where the last was cut
            got = body(await ask(core, after=got["next"]))
            seen += got["events"]
        assert [e["id"] for e in seen] == [e.cursor for e in events]
    finally:
        await bus.stop()


async def test_a_polled_channel_is_held_listened_and_answered_from_memory() -> None:
    backend = HeldBackend()
    bus = Bus(backend, MemoryIdempotencyStore(ttl=60), commit_linger=0)
    await bus.start()
    try:
        core, _ = core_for(bus)
        events = await publish(bus, 3)
        first = await ask(core, after=str(events[0].seq))  # read from the backend, and held
        assert backend.reads == 1
        await wait_until(lambda: len(bus.polls.holds) == 1)
        assert backend.listened == {CH}
        again = await ask(core, after=str(events[0].seq))
        assert body(again)["events"] == body(first)["events"] and backend.reads == 1
        # A long poll at the head parks from the callback and is woken by the next event.
        head = body(again)["next"]
        waiting = asyncio.ensure_future(ask(core, after=head, wait="30"))
        await wait_until(lambda: bus.polls.parked == 1)
        (event,) = await publish(bus, 1)
        assert [e["id"] for e in body(await waiting)["events"]] == [str(event.seq)]
        assert backend.reads == 1
    finally:
        await bus.stop()
