"""Light clients for tests that hold many connections: raw asyncio streams, nothing per event
beyond parsing, so one test process can hold a thousand SSE readers."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson


class RawSse:
    """An SSE reader on a bare socket; `read=False` leaves the socket unread (a stalled reader)."""

    def __init__(self, host: str, port: int, channel: str, *, after: str | None = None) -> None:
        self.host = host
        self.port = port
        self.channel = channel
        self.after = after
        self.events: list[dict[str, Any]] = []
        self.ended = False
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.status = 0

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=2**20)
        query = f"?after={self.after}" if self.after else ""
        request = (
            f"GET /api/channels/{self.channel}/stream{query} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\nAccept: text/event-stream\r\n\r\n"
        )
        self.writer.write(request.encode())
        await self.writer.drain()

    async def read_headers(self) -> None:
        assert self.reader is not None
        status_line = await self.reader.readline()
        self.status = int(status_line.split()[1])
        while (await self.reader.readline()) not in (b"\r\n", b""):
            pass

    async def read_events(self, count: int) -> None:
        """Read until `count` events arrived in all, or the stream ended."""
        assert self.reader is not None
        buffer = b""
        while len(self.events) < count:
            chunk = await self.reader.read(2**20)
            if not chunk:
                self.ended = True
                return
            buffer += chunk
            # Chunked transfer encoding wraps the frames; frames never contain blank lines inside.
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                for line in frame.split(b"\n"):
                    if line.startswith(b"data: "):
                        self.events.append(orjson.loads(line[6:]))

    async def read_to_end(self, timeout: float) -> None:
        await asyncio.wait_for(self.read_events(10**9), timeout)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
