"""The readers of `python -m bench ab`: plain asyncio protocols that read and discard (WebSocket
frames or SSE chunks), or poll with each answer's cursor (long polls at once, short polls a second
later), as a fourcast reader (the API key, or a guest's own session) or a peer's."""

from __future__ import annotations

import asyncio
import base64
import os
import random

from bench.clients.http import HTTPClient
from bench.clients.polling import PollAdapter
from bench.clients.target import Target, guest_token

CHANNELS = {"key": "public:ab", "guest": "room:ab"}
"""What each kind of fourcast reader reads, as in `make bench`: a service a public channel, a
guest a room (the chat page's case, where a person reading is also present)."""
EVENT_MARK = b'"ab"'
"""In every event `ab` publishes (its type), in no ping, keepalive or acknowledgement."""
POLL_INTERVALS = {"longpoll": 0.0, "shortpoll": 1.0}
"""Seconds from a poll's answer to the next poll, as in `make bench`."""
SUBSCRIBED = {"fourcast": b'"ack"', "floor": b'"subscribed"'}
"""What a WebSocket reader's subscription is acknowledged with (Nchan's needs no message)."""


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
    """Polls as a reader in `make bench` does (`PollAdapter`: how each server is polled): a long
    poll asks again at once with each answer's cursor, a short poll `interval` seconds after its
    answer (Nchan's interval poll: at once after an answer with an event, which carries one);
    `ready` resolves on the first answer (where the poller starts)."""

    def __init__(self, ready: asyncio.Future[None], who: Target, interval: float) -> None:
        super().__init__()
        self.ready = ready
        self.adapter = PollAdapter(who, long=not interval)
        self.interval = interval
        self.cursor: object = None
        self.on_response = self._answered

    def ask(self, request: bytes) -> None:
        if self.finished or self.closed or self.transport is None or self.transport.is_closing():
            return  # a short poll's next ask, due after the run closed it
        self.transport.write(request)

    def _answered(self, status: int, body: bytes) -> None:
        adapter = self.adapter
        if status not in adapter.ok:
            self.failed = f"a poll answered {status}: {body[:200]!r}"
            self.close()
            return
        self.cursor, _, _ = adapter.answer(self, status, body, self.cursor)
        delay = self.interval
        if not self.ready.done():
            self.ready.set_result(None)
            delay = random.uniform(0, self.interval)  # short pollers spread over the interval
        elif EVENT_MARK in body:
            self.received += len(body)
            if adapter.nchan:
                delay = 0.0
        request = adapter.request(self.cursor)
        if delay:
            asyncio.get_running_loop().call_later(delay, self.ask, request)
        else:
            self.ask(request)


def masked_text(payload: bytes) -> bytes:
    """A client's WebSocket text frame (clients must mask); payload under 126 bytes."""
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + key + body


async def as_reader(side: Target, n: int) -> Target:
    """Reader `n` of a side: the side's own credential (the API key; a peer takes none), or a
    guest's own session, signed in here as the chat page does."""
    if side.server == "fourcast" and side.auth == "guest":
        return side.with_credential(await guest_token(side.port, f"reader {n}"))
    return side


async def subscribe(who: Target, transport: str) -> Reader | Poller:
    """A reader of `who`'s channel on its server, subscribed and reading."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    if transport in POLL_INTERVALS:
        interval = POLL_INTERVALS[transport]
        _, poller = await loop.create_connection(
            lambda: Poller(ready, who, interval), "127.0.0.1", who.port
        )
        poller.ask(poller.adapter.first())
        await asyncio.wait_for(ready, 30)
        return poller
    lines = who.header_lines().encode()
    if transport == "websocket":
        upgraded: asyncio.Future[None] = loop.create_future()
        sock, reader = await loop.create_connection(
            lambda: Reader(upgraded, b"\r\n\r\n"), "127.0.0.1", who.port
        )
        key = base64.b64encode(os.urandom(16))
        path = who.stream_path if who.nchan else "/ws"
        sock.write(
            b"GET %s HTTP/1.1\r\nHost: ab\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
            % (path.encode(), key, lines)
        )
        await asyncio.wait_for(upgraded, 30)
        if not who.nchan:  # Nchan's subscriber is its URL
            reader.ready, reader.marker, reader.seen = ready, SUBSCRIBED[who.server], b""
            op = b'{"op":"subscribe","channel":"%s","ref":1}' % who.channel.encode()
            sock.write(masked_text(op))
            await asyncio.wait_for(ready, 30)
    else:
        # fourcast says it has subscribed with a comment; the peers subscribe before their head.
        marker = b": connected" if who.server == "fourcast" else b"\r\n\r\n"
        sock, reader = await loop.create_connection(
            lambda: Reader(ready, marker), "127.0.0.1", who.port
        )
        sock.write(
            b"GET %s HTTP/1.1\r\nHost: ab\r\nAccept: text/event-stream\r\n%s\r\n"
            % (who.stream_path.encode(), lines)
        )
        await asyncio.wait_for(ready, 30)
    reader.transport = sock
    return reader
