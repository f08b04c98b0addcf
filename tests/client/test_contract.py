"""fourcast.client's contract, the same over the four transports: resume after a drop, reset,
auth failure, idempotent publish across a restart, and backoff bounded while the server is away.

Servers are real processes, killed with SIGKILL; backoff waits go through an injected `sleep` that
records them, so no test waits for a backoff delay to run out.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator

import pytest

from app.client import TRANSPORTS, AuthError, Client, Event, Reset, Status, Subscription
from tests.fixtures.server import API_KEY, ServerFactory, ServerProcess, Servers

BASE, CAP = 0.5, 4.0
WAIT = 20.0  # bounds a failure only


@pytest.fixture(scope="module")
def small_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server whose channels keep only their last 5 events, for the reset tests."""
    servers = Servers(tmp_path_factory.mktemp("contract"))
    yield servers.start(history_size=5)
    servers.stop_all()


class Recorder:
    """An injected `sleep`: records each backoff delay and waits only a token 5 ms; from the
    `hold_after`-th wait on it waits until the test opens the gate (the server is back)."""

    def __init__(self, hold_after: int = 8) -> None:
        self.delays: list[float] = []
        self.hold_after = hold_after
        self.gate = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if len(self.delays) >= self.hold_after:
            await self.gate.wait()
        await asyncio.sleep(0.005)


async def take(subscription: Subscription, count: int) -> list[Event]:
    """The next `count` events of a subscription (failing after WAIT seconds)."""
    iterator = aiter(subscription)

    async def collect() -> list[Event]:
        return [await anext(iterator) for _ in range(count)]

    return await asyncio.wait_for(collect(), WAIT)


async def publish(server: ServerProcess, channel: str, numbers: range) -> list[Event]:
    async with Client(server.url, api_key=API_KEY) as client:
        published = [await client.publish(channel, "seq", {"n": n}) for n in numbers]
    assert all(e is not None for e in published)
    return [e for e in published if e is not None]


@pytest.fixture
async def sleeper() -> AsyncIterator[Recorder]:
    yield Recorder()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_resume_after_a_kill_with_backoff_bounded_while_the_server_is_away(
    start_server: ServerFactory, transport: str, sleeper: Recorder
) -> None:
    server = start_server()
    channel = f"public:resume-{transport}"
    rng = random.Random(7)
    client = Client(
        server.url,
        transport=transport,
        poll_interval=0.05,
        backoff_base=BASE,
        backoff_cap=CAP,
        rng=rng.random,
        sleep=sleeper,
    )
    live = asyncio.Event()
    async with client:
        sub = client.subscribe(
            channel, on_status=lambda s: live.set() if s.state == "live" else None
        )
        reader = aiter(sub)
        first = asyncio.ensure_future(anext(reader))
        await asyncio.wait_for(live.wait(), WAIT)
        await publish(server, channel, range(1, 4))
        got = [await asyncio.wait_for(first, WAIT)]
        got += [await asyncio.wait_for(anext(reader), WAIT) for _ in range(2)]

        # SIGKILL; the reader retries against a closed port until 8 backoff waits have passed.
        server.kill()
        connects_before = client.stats["connects"]
        pending = asyncio.ensure_future(anext(reader))
        while len(sleeper.delays) < 8:
            await asyncio.sleep(0.01)
            assert not pending.done(), "an event arrived from a dead server"
        await asyncio.to_thread(server.start)  # same port, same data folder
        await publish(server, channel, range(4, 7))
        sleeper.gate.set()
        got.append(await asyncio.wait_for(pending, WAIT))
        got += [await asyncio.wait_for(anext(reader), WAIT) for _ in range(2)]
        await sub.aclose()

    assert [e.data["n"] for e in got] == [1, 2, 3, 4, 5, 6]  # none missed, none twice
    assert len({e.id for e in got}) == 6
    # Every wait is within full jitter's bounds for its attempt, and none exceeds the cap.
    for attempt, delay in enumerate(sleeper.delays):
        assert 0 <= delay <= min(CAP, BASE * 2**attempt), (attempt, sleeper.delays)
    assert max(sleeper.delays) <= CAP
    assert len(sleeper.delays) == 8
    # One connection attempt after each backoff wait, none without: no retry storm.
    assert client.stats["connects"] - connects_before == len(sleeper.delays)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_reset_when_the_cursor_is_older_than_the_history(
    small_history: ServerProcess, transport: str
) -> None:
    channel = f"public:reset-{transport}"
    events = await publish(small_history, channel, range(1, 13))
    resets: list[Reset] = []
    async with Client(small_history.url, transport=transport, poll_interval=0.05) as client:
        sub = client.subscribe(channel, after=events[0].id, on_reset=resets.append)
        got = await take(sub, 5)
        await sub.aclose()
    assert [e.data["n"] for e in got] == [8, 9, 10, 11, 12]  # the 5 retained, in order
    assert resets == [Reset(channel, transport)]
    assert sub.resets == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_auth_failure_raises_at_once_without_retrying(
    small_history: ServerProcess, transport: str, sleeper: Recorder
) -> None:
    client = Client(
        small_history.url, api_key="not-a-key-of-this-server", transport=transport, sleep=sleeper
    )
    async with client:
        sub = client.subscribe("public:auth", after="0")
        with pytest.raises(AuthError) as failure:
            await asyncio.wait_for(anext(aiter(sub)), WAIT)
    assert failure.value.code in ("invalid_token", "unauthorized")
    assert client.stats["connects"] == 1
    assert sleeper.delays == []


async def test_publish_is_retried_across_a_restart_and_stored_once(
    start_server: ServerFactory,
) -> None:
    server = start_server()
    channel = "public:idempotent"
    retries: list[float] = []
    retried_twice = asyncio.Event()

    def retrying(_error: object, delay: float) -> None:
        retries.append(delay)
        if len(retries) >= 2:
            retried_twice.set()

    async with Client(server.url, api_key=API_KEY, backoff_cap=1.0) as client:
        first = await client.publish(channel, "order", {"n": 1}, idempotency_key="order-1")
        repeated = await client.publish(channel, "order", {"n": 1}, idempotency_key="order-1")
        server.kill()
        # Sent while the server is away: retried with the same key until it is back.
        sending = asyncio.ensure_future(
            client.publish(
                channel,
                "order",
                {"n": 2},
                idempotency_key="order-2",
                on_retry=retrying,
            )
        )
        await asyncio.wait_for(retried_twice.wait(), WAIT)
        await asyncio.to_thread(server.start)
        second = await asyncio.wait_for(sending, WAIT)
        again = await client.publish(channel, "order", {"n": 2}, idempotency_key="order-2")
        sub = client.subscribe(channel, after="0", transport="shortpoll")
        stored = await take(sub, 2)
        await sub.aclose()
    assert first is not None and second is not None
    assert repeated == first and again == second
    assert [e.id for e in stored] == [first.id, second.id]
    assert [e.data for e in stored] == [{"n": 1}, {"n": 2}]
    assert all(0 <= d <= 1.0 for d in retries)
    assert client.stats["publish_attempts"] >= 4 + len(retries)


async def test_auto_steps_down_past_the_transports_a_server_turned_off(
    start_server: ServerFactory,
) -> None:
    server = start_server(ws_upgrades_enabled="false", sse_enabled="false")
    channel = "public:auto"
    statuses: list[Status] = []
    live = asyncio.Event()

    def status(change: Status) -> None:
        statuses.append(change)
        if change.state == "live":
            live.set()

    async with Client(server.url, transport="auto") as client:
        sub = client.subscribe(channel, on_status=status)
        first = asyncio.ensure_future(anext(aiter(sub)))
        await asyncio.wait_for(live.wait(), WAIT)
        await publish(server, channel, range(1, 2))
        event = await asyncio.wait_for(first, WAIT)
        await sub.aclose()
    assert event.data == {"n": 1}
    assert sub.transport == "longpoll"
    tried = [s.transport for s in statuses if s.state == "connecting"]
    assert tried == ["websocket", "sse", "longpoll"]
    assert [s.state for s in statuses if s.transport == "longpoll"] == ["connecting", "live"]
