"""A raw HTTP connection the server has answered once (under plain uvicorn, adopted by then), and
reading it until a marker: for the hostile tests of one connection's pipelining and leaving."""

from __future__ import annotations

import asyncio

from tests.fixtures.server import ServerProcess


async def open_adopted(server: ServerProcess) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that has had one answer: under plain uvicorn, adopted by then."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200"), head
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)
    return reader, writer


async def read_until(reader: asyncio.StreamReader, marker: bytes) -> bytes:
    """What the server sends until `marker` has arrived or it closes the connection."""
    data = b""
    while marker not in data:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), 15)  # a safety net only
        except ConnectionError:
            break
        if not chunk:
            break
        data += chunk
    return data
