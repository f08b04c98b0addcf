"""The SSE subscriber: a raw asyncio protocol reading `data:` lines off the stream."""

from __future__ import annotations

import asyncio
import time

from orjson import loads

from bench.clients.target import BENCH_TYPE
from bench.track import Sub


class SSEClient(asyncio.Protocol):
    """Raw SSE reader: collects `data:` lines, ignoring chunk-size lines and comments.

    The server writes whole frames per chunk, so a `data:` line is never split by chunk framing;
    a line split across TCP reads is kept in the buffer until its newline arrives.
    """

    def __init__(self, sub: Sub, request: bytes, raw: bool = False) -> None:
        self.sub = sub
        self.request = request
        self.raw = raw  # Nchan: the data line is the published body
        self.buf = b""
        self.headers_done = False
        self.ready = asyncio.get_running_loop().create_future()
        self.closed = False
        self.closing = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.headers_done:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end], self.buf[end + 4 :]
            self.headers_done = True
            if not head.startswith(b"HTTP/1.1 200"):
                self.ready.set_exception(RuntimeError(head.split(b"\r\n", 1)[0].decode()))
                return
            self.ready.set_result(True)
            data = b""
        buf = self.buf + data if self.buf else data
        cut = buf.rfind(b"\n")
        if cut < 0:
            self.buf = buf
            return
        self.buf = buf[cut + 1 :]
        now = time.time() * 1000
        sub = self.sub
        raw = self.raw
        for line in buf[:cut].split(b"\n"):
            if line.startswith(b"data: "):
                d = loads(line[6:])
                if not raw:
                    if d.get("type") != BENCH_TYPE:
                        continue  # presence.join and the like
                    d = d["data"]
                sub.event(d["seq"], d["sent"], now)
            elif line.startswith(b"event: reset"):
                sub.tracker.resets += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.closing and self.sub.alive:
            self.sub.alive = False
            self.sub.tracker.disconnects += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed"))

    async def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()
