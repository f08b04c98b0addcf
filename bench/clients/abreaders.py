"""The readers of `python -m bench ab`: plain asyncio protocols that read and discard (WebSocket
frames or SSE chunks), or poll with each answer's cursor (long polls at once, short polls a second
later), each saying who it is with the API key or a guest's own session."""

from __future__ import annotations

import asyncio
import base64
import os
import random

import orjson

from bench.clients.http import HTTPClient, get_request
from bench.clients.target import Target, guest_token

API_KEY = "bench-ab-key-0123456789"
CHANNELS = {"key": "public:ab", "guest": "room:ab"}
"""What each kind of reader reads, as in `make bench`: a service a public channel, a guest a room
(the chat page's case, where a person reading is also present)."""
EVENT_MARK = b'"ab"'
"""In every event `ab` publishes (its type), in no ping, keepalive or acknowledgement."""
POLL_INTERVALS = {"longpoll": 0.0, "shortpoll": 1.0}
"""Seconds from a poll's answer to the next poll, as in `make bench`."""


class Watched(asyncio.Protocol):
    """What the run asks of every reader at its end: did events come, and did the server cut it
    off (a reader gone mid-run no longer costs its side anything)."""

    def __init__(self) -> None:
        super().__init__()
        self.received = 0
        """Bytes read once ready that carried events (not pings or keepalives): a run whose
        readers got none measured nothing."""
        self.failed = ""
        """Why the server refused or cut off this reader before the run closed it."""
        self.finished = False
        """Set by the run before it closes the reader."""

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.finished and not self.failed:
            self.failed = f"connection lost ({exc or 'closed by the server'})"


class Reader(Watched):
    """Reads and discards; `ready` resolves on the subscribe ack (WebSocket) or the stream's
    first comment (SSE)."""

    def __init__(self, ready: asyncio.Future[None], marker: bytes) -> None:
        super().__init__()
        self.ready = ready
        self.marker = marker
        self.seen = b""
        self.transport: asyncio.BaseTransport | None = None

    def data_received(self, data: bytes) -> None:
        if self.ready.done():
            if EVENT_MARK in data:
                self.received += len(data)
            return
        self.seen += data
        if self.marker in self.seen:
            self.ready.set_result(None)


class Poller(Watched, HTTPClient):
    """Polls as a reader in `make bench` does: a long poll (`wait`) asks again at once with each
    answer's `next`, a short poll `interval` seconds after its answer; `ready` resolves on the
    first answer (where the poller starts)."""

    def __init__(
        self,
        ready: asyncio.Future[None],
        port: int,
        channel: str,
        credential: str,
        interval: float,
    ) -> None:
        super().__init__()
        self.ready = ready
        self.port = port
        self.channel = channel
        self.credential = credential
        self.interval = interval
        self.on_response = self._answered

    def ask(self, query: str) -> None:
        if self.finished or self.closed or self.transport is None or self.transport.is_closing():
            return  # a short poll's next ask, due after the run closed it
        path = f"/api/channels/{self.channel}/events?{query}"
        self.transport.write(get_request(self.port, path, self.credential))

    def _answered(self, status: int, body: bytes) -> None:
        if status != 200:
            self.failed = f"a poll answered {status}: {body[:200]!r}"
            self.close()
            return
        answer = orjson.loads(body)
        delay = self.interval
        if not self.ready.done():
            self.ready.set_result(None)
            delay = random.uniform(0, self.interval)  # short pollers spread over the interval
        elif answer["events"]:
            self.received += len(body)
        if self.interval:
            query = f"after={answer['next']}"
            asyncio.get_running_loop().call_later(delay, self.ask, query)
        else:
            self.ask(f"after={answer['next']}&wait=25")


def masked_text(payload: bytes) -> bytes:
    """A client's WebSocket text frame (clients must mask); payload under 126 bytes."""
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + key + body


async def credential(port: int, auth: str, n: int) -> str:
    """The header lines that say who reader `n` is: the API key, or a guest's own session (signed
    in here, as the chat page does) in its cookie."""
    token = await guest_token(port, f"reader {n}") if auth == "guest" else API_KEY
    return Target("fourcast", port, CHANNELS[auth], auth, token).header_lines()


async def subscribe(port: int, transport: str, channel: str, who: str) -> Reader | Poller:
    """A reader of `channel` that says it is `who` (`credential`'s header lines)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    if transport in POLL_INTERVALS:
        interval = POLL_INTERVALS[transport]
        _, poller = await loop.create_connection(
            lambda: Poller(ready, port, channel, who, interval), "127.0.0.1", port
        )
        poller.ask("limit=1")
        await asyncio.wait_for(ready, 30)
        return poller
    if transport == "websocket":
        upgraded: asyncio.Future[None] = loop.create_future()
        sock, reader = await loop.create_connection(
            lambda: Reader(upgraded, b"\r\n\r\n"), "127.0.0.1", port
        )
        key = base64.b64encode(os.urandom(16))
        sock.write(
            b"GET /ws HTTP/1.1\r\nHost: ab\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n" % (key, who.encode())
        )
        await asyncio.wait_for(upgraded, 30)
        reader.ready, reader.marker, reader.seen = ready, b'"ack"', b""
        sock.write(masked_text(b'{"op":"subscribe","channel":"%s","ref":1}' % channel.encode()))
    else:
        sock, reader = await loop.create_connection(
            lambda: Reader(ready, b": connected"), "127.0.0.1", port
        )
        path = f"/api/channels/{channel}/stream"
        sock.write(f"GET {path} HTTP/1.1\r\nHost: ab\r\n{who}\r\n".encode())
    await asyncio.wait_for(ready, 30)
    reader.transport = sock
    return reader
