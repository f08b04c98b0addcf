"""Publishing at a paced rate: pipelined REST `POST`s (every server) or fourcast's WebSocket
`publish` op (service identity), and the body one published event has."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.clients.http import HTTPClient
from bench.clients.target import Target
from bench.clients.websocket import ws_connect_picows


def publish_body(target: Target, seq: int) -> bytes:
    """What one published event's body is: fourcast and the floor take `{"type", "data"}`; Nchan
    publishes the body as it is, so there the body is the data."""
    data = b'{"seq":' + str(seq).encode() + b',"sent":' + repr(time.time() * 1000).encode() + b"}"
    if target.nchan:
        return data
    return b'{"type":"bench","data":' + data + b"}"


class Pacer:
    """Publishes at a paced rate; subclasses say how one event is published."""

    seq: int
    sent: int
    acks: int
    errors: int

    def publish_one(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    async def run(self, rate: float, duration: float, tick: float = 0.005) -> None:
        """Publish `rate` events/s for `duration` s, catching up each tick (no coordinated omission)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        done = 0
        total = round(rate * duration)
        while done < total:
            elapsed = loop.time() - start
            due = min(total, int(rate * elapsed) + 1)
            while done < due:
                self.publish_one()
                done += 1
            await asyncio.sleep(tick)

    @property
    def outstanding(self) -> int:
        return self.sent - self.acks - self.errors

    async def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class HTTPPublisher(Pacer):
    """Publishes over one keep-alive HTTP connection, requests pipelined (not waiting for each
    answer): `POST /api/channels/CH/events` (fourcast, the floor) or `POST /pub?id=CH` (Nchan).
    The same for every server, so a publish costs each of them one HTTP request."""

    def __init__(self, target: Target, api_key: str) -> None:
        self.target = target
        self.api_key = api_key
        self.seq = self.sent = self.acks = self.errors = 0
        self.last_error: Any = None
        self.conn: HTTPClient | None = None
        port = target.port
        auth = f"Authorization: Bearer {api_key}\r\n" if target.server == "fourcast" else ""
        self.head = (
            f"POST {target.publish_path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()

    async def connect(self) -> HTTPPublisher:
        self.conn = await HTTPClient.connect(self.target.port)
        self.conn.on_response = self._answered
        return self

    def _answered(self, status: int, body: bytes) -> None:
        if 200 <= status < 300:
            self.acks += 1
        else:
            self.errors += 1
            self.last_error = (status, body[:200])

    def publish_one(self) -> int:
        self.seq += 1
        self.sent += 1
        body = publish_body(self.target, self.seq)
        assert self.conn is not None and self.conn.transport is not None
        self.conn.transport.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        return self.seq

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


class Publisher(Pacer):
    """Publishes `{"seq", "sent"}` events at a paced rate over one service WebSocket connection."""

    def __init__(self, port: int, channel: str, api_key: str) -> None:
        self.port = port
        self.channel = channel
        self.api_key = api_key
        self.seq = 0
        self.sent = 0
        self.acks = 0
        self.errors = 0
        self.last_error: Any = None
        self.conn: Any = None

    async def connect(self) -> Publisher:
        self.conn = await ws_connect_picows(
            f"ws://127.0.0.1:{self.port}/ws",
            None,
            None,
            ["fourcast.v1", f"fourcast.bearer.{self.api_key}"],
            publisher=self,
        )
        await asyncio.wait_for(self.conn.ready, 30)
        return self

    def acked(self, msg: dict[str, Any]) -> None:
        self.acks += 1

    def failed(self, msg: dict[str, Any]) -> None:
        self.errors += 1
        self.last_error = msg

    def publish_one(self) -> int:
        self.seq += 1
        self.sent += 1
        head = b'{"op":"publish","channel":"' + self.channel.encode()
        self.conn.send_text(
            head
            + b'","type":"bench","ref":'
            + str(999 + self.seq).encode()
            + b',"data":{"seq":'
            + str(self.seq).encode()
            + b',"sent":'
            + repr(time.time() * 1000).encode()
            + b"}}"
        )
        return self.seq

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()


async def make_publisher(via: str, target: Target, api_key: str) -> Pacer:
    """The scenario's publisher: `rest` (any server) or `websocket` (fourcast's `publish` op)."""
    if via == "websocket" and target.server == "fourcast":
        return await Publisher(target.port, target.channel, api_key).connect()
    return await HTTPPublisher(target, api_key).connect()
