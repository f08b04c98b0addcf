"""Helpers for cluster tests: readers that survive a node or Redis going away, and small
poll-until helpers, so no test sleeps to synchronise and every await has a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Sequence
from typing import Any

import httpx

from app.bus.redis.streams import SEQ_BITS
from tests.clients import PollReader, Reader, WsReader, make_reader, sign_in
from tests.fixtures.server import ServerProcess

RECONNECT_PAUSE = 0.1
"""A resuming reader's pause between incarnations (client backoff, not synchronisation)."""


def numbers(events: Sequence[dict[str, Any]]) -> list[int]:
    return [e["data"]["n"] for e in events]


def ids(events: Sequence[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in events]


def assert_exactly(received: Sequence[dict[str, Any]], expected: Sequence[dict[str, Any]]) -> None:
    """The same durable events, each once, in the same order (compared by cursor and data)."""
    got = [(e["id"], e["data"]) for e in received if e["id"] is not None]
    want = [(e["id"], e["data"]) for e in expected]
    if got != want:
        seen = [i for i, _ in got]
        missing = [i for i, _ in want if i not in seen]
        dups = sorted({i for i in seen if seen.count(i) > 1})
        raise AssertionError(
            f"got {len(got)} events, want {len(want)}; missing {missing[:20]}, "
            f"duplicated {dups[:20]}, first got {seen[:10]}, first want {[i for i, _ in want][:10]}"
        )


class Resuming:
    """A reader over one transport that reconnects whenever its connection ends or fails,
    resuming from its last cursor, on the next node of `urls` (one URL: always the same node).

    It keeps every event it received across its incarnations, so a test can check that the
    whole sequence is complete, ordered and free of duplicates.
    """

    def __init__(
        self,
        transport: str,
        urls: Sequence[str],
        channel: str,
        *,
        after: str,
        token: str | None = None,
        long_poll_wait: int = 5,
    ) -> None:
        self.transport = transport
        self.urls = list(urls)
        self.channel = channel
        self.cursor: str | None = after
        self.token = token
        self.long_poll_wait = long_poll_wait
        self.events: list[dict[str, Any]] = []
        self.resets = 0
        self.incarnations = 0
        self._next = 0
        self.nodes_used: list[str] = []
        self.current: Reader | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def durable(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["id"] is not None]

    def _make(self, url: str) -> Reader:
        if self.transport == "longpoll":
            return PollReader(
                url, self.channel, wait=self.long_poll_wait, token=self.token, after=self.cursor
            )
        if self.transport == "shortpoll":
            return PollReader(url, self.channel, wait=0, token=self.token, after=self.cursor)
        return make_reader(self.transport, url, self.channel, token=self.token, after=self.cursor)

    def start(self) -> Resuming:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            url = self.urls[self._next % len(self.urls)]
            self._next += 1
            self.incarnations += 1
            self.nodes_used.append(url)
            reader = self.current = self._make(url)
            task = reader._task = asyncio.create_task(reader._guarded())
            taken = 0
            try:
                while True:
                    taken = self._take(reader, taken)
                    if reader.ended.is_set() or self._refused(reader):
                        break
                    reader._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(reader._changed.wait(), 0.25)
            finally:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                self._take(reader, taken)
            await asyncio.sleep(RECONNECT_PAUSE)

    @staticmethod
    def _refused(reader: Reader) -> bool:
        """A WebSocket whose subscribe was answered with an error (e.g. Redis down): retry."""
        return isinstance(reader, WsReader) and any(
            r.get("op") == "error" and r.get("ref") == "sub" for r in reader.replies
        )

    def _take(self, reader: Reader, taken: int) -> int:
        new = reader.events[taken:]
        if new:
            self.events.extend(new)
            self._changed.set()
        if reader.cursor is not None:
            self.cursor = reader.cursor
        self.resets += reader.resets
        reader.resets = 0
        return taken + len(new)

    def move_to(self, urls: Sequence[str]) -> None:
        """Reconnect (resuming) to these nodes from now on."""
        self.urls = list(urls)
        self._next = 0

    async def reconnect(self) -> None:
        """Drop the current connection; the reader resumes on its next node."""
        if self.current is not None:
            await self.current.stop()

    async def wait_for(self, count: int, timeout: float = 20) -> None:
        async def reached() -> None:
            while len(self.durable) < count:
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(reached(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.transport} reader has {len(self.durable)} of {count} events after "
                f"{timeout}s ({self.incarnations} connections, nodes {self.nodes_used[-5:]})"
            ) from None

    async def wait_for_ids(self, ids: set[str], timeout: float = 30) -> None:
        """Wait until every cursor in `ids` has arrived (replays after a reset count once)."""

        async def reached() -> None:
            while not ids <= {e["id"] for e in self.durable}:
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(reached(), timeout)
        except TimeoutError:
            missing = sorted(ids - {e["id"] for e in self.durable})
            raise AssertionError(
                f"{self.transport} reader misses {len(missing)} events after {timeout}s: "
                f"{missing[:10]}"
            ) from None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._task, 5)


async def head(url: str, channel: str, token: str | None = None) -> str:
    """The cursor of a channel's newest event (what a live reader starts after)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.get(
            f"/api/channels/{channel}/events", params={"limit": 1}, headers=headers
        )
        response.raise_for_status()
        return str(response.json()["next"])


async def service_publish(
    client: httpx.AsyncClient, node: ServerProcess, channel: str, n: int, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"{node.url}/api/channels/{channel}/events",
        json={"type": "seq", "data": {"n": n}, **extra},
        headers=node.service_headers,
    )


class Person:
    """A signed-in person: one token that every node accepts (the nodes share the secret)."""

    def __init__(self, token: str, user: dict[str, Any]) -> None:
        self.token = token
        self.id = str(user["id"])
        self.name = str(user["name"])

    @classmethod
    async def sign_in(cls, node: ServerProcess, name: str) -> Person:
        token, user = await asyncio.wait_for(sign_in(node.url, name), 10)
        return cls(token, user)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def publish(
        self, node: ServerProcess, channel: str, event_type: str, data: Any
    ) -> httpx.Response:
        async with httpx.AsyncClient(base_url=node.url, headers=self.headers, timeout=10) as client:
            return await client.post(
                f"/api/channels/{channel}/events", json={"type": event_type, "data": data}
            )

    async def presence(self, node: ServerProcess, channel: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=node.url, headers=self.headers, timeout=10) as client:
            response = await client.get(f"/api/channels/{channel}/presence")
            assert response.status_code == 200, response.text
            return response.json()  # type: ignore[no-any-return]


def seen(reader: Reader | Resuming, event_type: str, **data: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in reader.events
        if e["type"] == event_type and all(e["data"].get(k) == v for k, v in data.items())
    ]


async def wait_seen(
    reader: Reader, event_type: str, timeout: float = 10, **data: Any
) -> dict[str, Any]:
    """Wait until `reader` received an event of this type whose data has these fields."""

    async def found() -> dict[str, Any]:
        while True:
            matches = seen(reader, event_type, **data)
            if matches:
                return matches[0]
            reader._changed.clear()
            await reader._changed.wait()

    try:
        return await asyncio.wait_for(found(), timeout)
    except TimeoutError:
        raise AssertionError(
            f"no {event_type} {data} within {timeout}s; got "
            f"{[(e['type'], e['data']) for e in reader.events][-10:]}"
        ) from None


class Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class RetryingPublishers:
    """Clients that publish numbered events, each retried with its key until acknowledged."""

    def __init__(self, nodes: list[ServerProcess], channel: str, pace: float) -> None:
        self.nodes = nodes
        self.channel = channel
        self.pace = pace
        self.numbers = itertools.count(1)
        self.acked: dict[int, dict[str, Any]] = {}
        self.retries = 0
        self.changed = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.began = 0.0

    def start(self, clients: int = 2) -> None:
        self.began = time.monotonic()
        self.tasks = [asyncio.create_task(self._run(i)) for i in range(clients)]

    async def _run(self, client_no: int) -> None:
        headers = self.nodes[0].service_headers
        async with httpx.AsyncClient(headers=headers, timeout=10) as client:
            while True:
                n = next(self.numbers)
                for attempt in itertools.count():
                    node = self.nodes[(client_no + attempt) % len(self.nodes)]
                    try:
                        response = await client.post(
                            f"{node.url}/api/channels/{self.channel}/events",
                            json={"type": "seq", "data": {"n": n}},
                            headers={"Idempotency-Key": f"event-{n}"},
                        )
                    except httpx.TransportError:
                        response = None
                    if response is not None and response.status_code in (200, 201):
                        body = response.json()
                        assert body["data"] == {"n": n}, body
                        self.acked[n] = body
                        self.changed.set()
                        break
                    assert response is None or response.status_code == 503, response.text
                    self.retries += 1
                    self.changed.set()
                    await asyncio.sleep(0.05)  # a client's backoff, shortened
                await asyncio.sleep(self.pace)

    async def until(self, count: int, timeout: float = 60) -> None:
        async def reached() -> None:
            while len(self.acked) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(reached(), timeout)

    async def until_retried(self, count: int, timeout: float = 60) -> None:
        async def reached() -> None:
            while self.retries < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(reached(), timeout)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def first_arrivals_in_order(reader: Resuming) -> list[int]:
    """Cursors in order of first arrival; a cursor never names two events; in order per epoch."""
    seen: dict[str, Any] = {}
    first = []
    for event in reader.durable:
        if seen.setdefault(event["id"], event["data"]) != event["data"]:
            raise AssertionError(f"{reader.transport}: cursor {event['id']} names two events")
        if len(seen) > len(first):
            first.append(int(event["id"]))
    for epoch in {c >> SEQ_BITS for c in first}:
        mine = [c for c in first if c >> SEQ_BITS == epoch]
        assert mine == sorted(mine), f"{reader.transport}: out of order"
    return first


async def every_acknowledged_event_read(
    publishers: RetryingPublishers, readers: Sequence[Resuming]
) -> list[str]:
    """After a crash under load: the crash refused something, each event (each Idempotency-Key)
    was acknowledged under one cursor and every cursor once, and every reader got them all (a
    cursor never naming two events, first arrivals in order). The readers are stopped; returns
    the acknowledged cursors."""
    assert publishers.retries > 0, "the crash refused nothing: it proves nothing"
    cursors = [body["id"] for body in publishers.acked.values()]
    assert len(set(cursors)) == len(cursors)
    try:
        # Every reader is waited for, so that a failure names each reader's missing cursors
        # (all readers missing one event and only one transport missing it are different bugs).
        waits = [reader.wait_for_ids(set(cursors), timeout=30) for reader in readers]
        failures = [r for r in await asyncio.gather(*waits, return_exceptions=True) if r]
    finally:
        for reader in readers:
            await reader.stop()
    assert not failures, "; ".join(str(failure) for failure in failures)
    for reader in readers:
        first_arrivals_in_order(reader)
    return cursors
