"""HTTP/1.1 keep-alive client (polls, REST publishes, guest sign-in) and the raw requests it sends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class HTTPClient(asyncio.Protocol):
    """One keep-alive connection, one request at a time; responses framed by Content-Length."""

    def __init__(self) -> None:
        self.buf = b""
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.need = -1
        self.status = 0
        self.head = b""  # the last response's status line and headers
        # Pipelined use (HTTPPublisher): every response goes here instead of to a waiter.
        self.on_response: Callable[[int, bytes], None] | None = None

    @classmethod
    async def connect(cls, port: int) -> HTTPClient:
        loop = asyncio.get_running_loop()
        _t, proto = await loop.create_connection(cls, "127.0.0.1", port)
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buf[:end]
                self.head = head
                self.buf = self.buf[end + 4 :]
                self.status = int(head[9:12])
                low = head.lower()
                i = low.find(b"content-length:")
                if i < 0:
                    self.need = 0
                else:
                    j = low.find(b"\r\n", i)
                    self.need = int(low[i + 15 : j if j >= 0 else len(low)])
            if len(self.buf) < self.need:
                return
            body, self.buf = self.buf[: self.need], self.buf[self.need :]
            self.need = -1
            if self.on_response is not None:
                self.on_response(self.status, body)
                if not self.buf:
                    return
                continue
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result((self.status, body))
            if not self.buf:
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    @classmethod
    async def once(cls, port: int, raw: bytes) -> tuple[int, bytes]:
        """One request on a connection of its own, closed once answered."""
        client = await cls.connect(port)
        try:
            return await client.request(raw)
        finally:
            client.close()

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.closed or self.transport is None:
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def header(self, name: bytes) -> bytes | None:
        """A header of the last response (`name` in lower case)."""
        for line in self.head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == name:
                return v.strip()
        return None


def get_request(port: int, path: str, headers: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n".encode()


def post_request(port: int, path: str, body: bytes, api_key: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Pipeline(HTTPClient):
    """One request written again and again without waiting for its answers (`ab`'s publishes),
    never more than `depth` unanswered: a server held up (a busy machine) is not sent past the
    number of pipelined requests it allows, which would close the connection."""

    def __init__(self, raw: bytes, depth: int) -> None:
        super().__init__()
        self.raw = raw
        self.depth = depth
        self.sent = self.answered = self.skipped = 0
        self.refused: tuple[int, bytes] | None = None
        self.on_response = self._answered

    def _answered(self, status: int, body: bytes) -> None:
        self.answered += 1
        if status >= 300 and self.refused is None:
            self.refused = (status, body[:200])

    def send(self) -> None:
        """One more request, unless `depth` are unanswered (counted in `skipped`)."""
        if self.closed or self.transport is None:
            raise ConnectionError("the server closed the publishing connection")
        if self.sent - self.answered >= self.depth:
            self.skipped += 1
            return
        self.sent += 1
        self.transport.write(self.raw)
