"""Test clients for the four transports, each collecting the events it receives.

Every reader records events (as dicts) and reset signals, remembers its last cursor, and lets a test
await a count with a timeout instead of sleeping. The readers speak the raw protocol on purpose:
they check the server's framing and see every delivery, duplicates included, where fourcast.client
would de-duplicate. Signing in and publishing go through fourcast.client (`app.client`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from app.client import Client

TRANSPORTS = ("shortpoll", "longpoll", "sse", "websocket")

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T]], timeout: float = 10, interval: float = 0.05
) -> T:
    """Poll a server-side state (presence, typing, readiness) until `check` returns a truthy
    value; fail after `timeout` seconds."""

    async def loop() -> T:
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(interval)

    return await asyncio.wait_for(loop(), timeout)


def metric(text: str, sample: str) -> float:
    """One unlabelled sample's value in a /metrics page (`sample`: its name, as exposed)."""
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    assert match is not None, f"{sample} not in /metrics"
    return float(match[1])


async def parked_polls(base_url: str) -> float:
    """The server's count of parked long polls (`fourcast_long_polls_waiting` in /metrics)."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{base_url}/metrics")).text
    return metric(text, "fourcast_long_polls_waiting")


async def until_parked(base_url: str, count: int) -> None:
    """Wait (bounded) until exactly `count` long polls are parked on the server."""

    async def parked() -> bool:
        return await parked_polls(base_url) == count

    await eventually(parked)


async def sign_in(base_url: str, name: str) -> tuple[str, dict[str, Any]]:
    async with Client(base_url) as client:
        body = await client.sign_in(name)
        return body["token"], body["user"]


class Reader(abc.ABC):
    """Base: collects events; `cursor` is what to resume from."""

    transport = ""

    def __init__(
        self, base_url: str, channel: str, *, token: str | None = None, after: str | None = None
    ) -> None:
        self.base_url = base_url
        self.channel = channel
        self.token = token
        self.cursor = after
        self.events: list[dict[str, Any]] = []
        self.resets = 0
        self.closed_code: int | None = None
        self.ended = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def durable(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["id"] is not None]

    def _got(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._changed.set()

    async def start(self) -> Reader:
        self._task = asyncio.create_task(self._guarded())
        await asyncio.wait_for(self.ready.wait(), 10)
        return self

    async def _guarded(self) -> None:
        try:
            await self._run()
        finally:
            self.ended.set()
            self._changed.set()
            self.ready.set()

    @abc.abstractmethod
    async def _run(self) -> None:
        """Connect and collect events until cancelled or the server ends the stream."""

    async def wait_for(self, count: int, timeout: float = 20, durable_only: bool = True) -> None:
        """Wait until `count` events arrived (or the reader ended)."""

        async def reached() -> None:
            while True:
                have = len(self.durable if durable_only else self.events)
                if have >= count or self.ended.is_set():
                    return
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(reached(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


class PollReader(Reader):
    def __init__(
        self, *args: Any, wait: int = 0, interval: float = 0.05, limit: int = 1000, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.wait = wait
        self.interval = interval
        self.limit = limit
        self.requests = 0
        self.transport = "longpoll" if wait else "shortpoll"

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.wait + 10) as client:
            if self.cursor is None:
                # Start from the head, as a live reader would.
                response = await client.get(
                    f"/api/channels/{self.channel}/events",
                    params={"limit": 1},
                    headers=self.headers,
                )
                response.raise_for_status()
                self.cursor = response.json()["next"]
            self.ready.set()
            while True:
                params: dict[str, Any] = {"after": self.cursor, "limit": self.limit}
                if self.wait:
                    params["wait"] = self.wait
                response = await client.get(
                    f"/api/channels/{self.channel}/events", params=params, headers=self.headers
                )
                self.requests += 1
                response.raise_for_status()
                body = response.json()
                if body["reset"]:
                    self.resets += 1
                for event in body["events"]:
                    self._got(event)
                self.cursor = body["next"]
                if not self.wait or not body["events"]:
                    await asyncio.sleep(self.interval if not self.wait else 0)


class SseReader(Reader):
    transport = "sse"

    async def _run(self) -> None:
        headers = dict(self.headers)
        if self.cursor is not None:
            headers["Last-Event-ID"] = self.cursor
        async with (
            httpx.AsyncClient(
                base_url=self.base_url, timeout=httpx.Timeout(10, read=None)
            ) as client,
            client.stream(
                "GET", f"/api/channels/{self.channel}/stream", headers=headers
            ) as response,
        ):
            self.status = response.status_code
            if response.status_code != 200:
                self.error_body = orjson.loads(await response.aread())
                return
            fields: dict[str, str] = {}
            async for line in response.aiter_lines():
                if line == "":
                    self._dispatch(fields)
                    fields = {}
                elif line.startswith(":"):
                    self.ready.set()
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value

    def _dispatch(self, fields: dict[str, str]) -> None:
        if "retry" in fields and "data" not in fields:
            self.ready.set()
            return
        if fields.get("event") == "reset":
            self.resets += 1
            self._changed.set()
            return
        if "data" in fields:
            event = orjson.loads(fields["data"])
            assert "event" not in fields, fields  # events are unnamed: the type is in the data
            assert (fields.get("id") or None) == event["id"], fields
            if event["id"] is not None:
                self.cursor = event["id"]
            self._got(event)


class WsReader(Reader):
    transport = "websocket"

    def __init__(self, *args: Any, read: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read = read
        self.connection: ClientConnection | None = None
        self.replies: list[dict[str, Any]] = []
        self._refs = 0

    async def _run(self) -> None:
        subprotocols = ["fourcast.v1"]
        if self.token:
            subprotocols.append(f"fourcast.bearer.{self.token}")
        ws_url = self.base_url.replace("http://", "ws://") + "/ws"
        async with websockets.connect(ws_url, subprotocols=subprotocols, max_size=None) as ws:  # type: ignore[arg-type]
            self.connection = ws
            welcome = orjson.loads(await ws.recv())
            assert welcome["op"] == "welcome", welcome
            subscribe: dict[str, Any] = {"op": "subscribe", "channel": self.channel, "ref": "sub"}
            if self.cursor is not None:
                subscribe["after"] = self.cursor
            await ws.send(orjson.dumps(subscribe).decode())
            try:
                while True:
                    if not self.read:
                        if not self.ready.is_set():
                            self.ready.set()
                        await asyncio.sleep(3600)
                    message = orjson.loads(await ws.recv())
                    op = message.pop("op")
                    if op == "event":
                        if message["id"] is not None:
                            self.cursor = message["id"]
                        self._got(message)
                    elif op == "reset":
                        self.resets += 1
                        self._changed.set()
                    else:
                        self.replies.append({"op": op, **message})
                        self._changed.set()
                        if op == "ack" and message.get("ref") == "sub":
                            if self.cursor is None:
                                self.cursor = message["next"]
                            self.ready.set()
            except websockets.ConnectionClosed as exc:
                self.closed_code = exc.rcvd.code if exc.rcvd else None

    async def request(self, message: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send an op over this reader's own connection and wait for the reply with its ref."""
        assert self.connection is not None
        self._refs += 1
        ref = f"req-{self._refs}"
        await self.connection.send(orjson.dumps({**message, "ref": ref}).decode())

        async def replied() -> dict[str, Any]:
            while True:
                for reply in self.replies:
                    if reply.get("ref") == ref:
                        return reply
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(replied(), timeout)


def make_reader(transport: str, base_url: str, channel: str, **kwargs: Any) -> Reader:
    if transport == "shortpoll":
        return PollReader(base_url, channel, wait=0, **kwargs)
    if transport == "longpoll":
        return PollReader(base_url, channel, wait=20, **kwargs)
    if transport == "sse":
        return SseReader(base_url, channel, **kwargs)
    if transport == "websocket":
        return WsReader(base_url, channel, **kwargs)
    raise ValueError(transport)


async def publish_many(
    base_url: str,
    channel: str,
    count: int,
    headers: dict[str, str],
    *,
    start: int = 1,
    concurrency: int = 1,
    type: str = "seq",
) -> list[dict[str, Any]]:
    """Publish `count` events with data {"n": i}; returns the events in order of `n`. Each must be
    accepted at the first attempt (no retries: a refusal fails the test)."""
    results: dict[int, dict[str, Any]] = {}
    token = headers["Authorization"].removeprefix("Bearer ")
    async with Client(base_url, api_key=token, publish_retry_for=0) as client:
        numbers = iter(range(start, start + count))

        async def worker() -> None:
            for n in numbers:
                event = await client.publish(channel, type, {"n": n})
                assert event is not None
                results[n] = event.to_dict()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return [results[n] for n in sorted(results)]
