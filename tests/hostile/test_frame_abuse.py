"""Malformed and abusive RFC 6455 frames from a raw socket get the same close on every launch
path: `python -m app` (fourcast's WebSocket protocol), plain `uvicorn app.main:app` (uvicorn's
stock one, which the app adopts), and uvicorn given fourcast's protocols on its command line.

Autobahn|Testsuite (tests/autobahn) runs the full set on `python -m app` only; here each path
answers the same frames, compared with each other and with the code RFC 6455 gives.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Iterator

import pytest

from tests.fixtures.server import LAUNCH_COMMANDS, ServerProcess, Servers

TEXT, BINARY, CLOSE, PING = 0x1, 0x2, 0x8, 0x9
BIG = 70_000
"""Over the 64 KiB message limit."""


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """A client frame, masked with a zero key."""
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    size = len(payload)
    if size < 126:
        head = bytes([first, 0x80 | size])
    elif size < 65536:
        head = bytes([first, 0x80 | 126]) + struct.pack("!H", size)
    else:
        head = bytes([first, 0x80 | 127]) + struct.pack("!Q", size)
    return head + b"\0\0\0\0" + payload


def close(code: int, reason: bytes = b"") -> bytes:
    return frame(CLOSE, struct.pack("!H", code) + reason)


CASES = {
    # RFC 6455 5.4: a close between a message's fragments is an ordinary close.
    "close between fragments": (frame(TEXT, b'{"op":', fin=False) + close(1000), 1000),
    "close code 999": (close(999), 1002),
    "close code 1005": (close(1005), 1002),
    "close reason not UTF-8": (close(4000, b"\xff\xfe"), 1007),
    "close of one byte": (frame(CLOSE, b"\x03"), 1002),
    "reserved bit": (frame(TEXT, b"{}", rsv=4), 1002),
    "ping over 125 bytes": (frame(PING, b"p" * 126), 1002),
    "fragmented ping": (frame(PING, b"p", fin=False), 1002),
    "continuation with no start": (frame(0x0, b"x"), 1002),
    "new message between fragments": (frame(TEXT, b"{", fin=False) + frame(TEXT, b"}"), 1002),
    "text not UTF-8": (frame(TEXT, b"\xff"), 1007),
    "reserved opcode": (frame(0x3), 1002),
    "over the limit in fragments": (
        frame(TEXT, b"a" * (BIG // 2), fin=False) + frame(0x0, b"a" * (BIG // 2)),
        1009,
    ),
    "binary over the limit": (frame(BINARY, b"a" * BIG), 1009),
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    started = Servers(tmp_path_factory.mktemp("frames"))
    yield {launch: started.start(launch=launch) for launch in LAUNCH_COMMANDS}
    started.stop_all()


async def close_code(server: ServerProcess, sent: bytes) -> int | None:
    """The code of the server's close frame once `sent` follows the welcome (None: no close)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        writer.write(sent)
        async with asyncio.timeout(10):
            while True:
                first, second = await reader.readexactly(2)
                size = second & 0x7F
                if size == 126:
                    (size,) = struct.unpack("!H", await reader.readexactly(2))
                elif size == 127:
                    (size,) = struct.unpack("!Q", await reader.readexactly(8))
                payload = await reader.readexactly(size)
                if first & 0x0F == CLOSE:
                    return int(struct.unpack("!H", payload[:2])[0]) if payload else None
    except asyncio.IncompleteReadError:
        return None
    finally:
        writer.close()


@pytest.mark.parametrize("case", CASES)
async def test_each_launch_path_closes_bad_frames_alike(
    servers: dict[str, ServerProcess], case: str
) -> None:
    sent, expected = CASES[case]
    codes = {launch: await close_code(server, sent) for launch, server in servers.items()}
    assert codes == dict.fromkeys(servers, expected)
