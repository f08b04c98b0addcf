"""Requests pipelined behind one being answered when the server shuts down, on both launch
paths: each gets an answer (503 `unavailable`, Retry-After, the last with Connection: close),
never a close with no answer at all, so a client knows a publish among them was not kept.

The request being answered is held by the client itself: it reads nothing, so the answer ahead
(a poll page of a few MiB, more than the socket buffers hold) keeps the next request waiting to
write (under plain uvicorn, on a connection the app has adopted at its first request). After
SIGTERM (once uvicorn has said "Shutting down", so its `shutdown` has run on every
connection) the client pipelines a publish, then reads everything.
"""

from __future__ import annotations

import asyncio
import signal
import socket

import httpx
import orjson
import pytest

from tests.clients import eventually
from tests.fixtures.server import API_KEY, ServerFactory

MIB = 1024 * 1024
EVENTS = 8  # of 1 MiB each: more than the server's send buffer (4 MiB at most) and ours
CHANNEL = "public:pipelined"


def _publish(body: bytes) -> bytes:
    return (
        b"POST /api/channels/" + CHANNEL.encode() + b"/events HTTP/1.1\r\nhost: test\r\n"
        b"authorization: Bearer " + API_KEY.encode() + b"\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%b" % (len(body), body)
    )


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn --timeout-graceful-shutdown 1"])
async def test_a_request_pipelined_behind_one_being_answered_at_shutdown_gets_a_503(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(
        launch=launch,
        drain_timeout=1,
        max_event_bytes=MIB,
        max_body_bytes=2 * MIB,
        queue_max_bytes=4 * MIB,
        poll_max_bytes=16 * MIB,
    )
    headers = {"authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
        for n in range(EVENTS):
            data = {"type": "big", "data": {"n": n, "text": "x" * (MIB - 1024)}}
            response = await http.post(f"/api/channels/{CHANNEL}/events", json=data)
            assert response.status_code in (200, 201), response.text

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # read by us alone, slowly
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    # One answer first: under plain uvicorn the app has adopted the connection by then.
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    assert head.startswith(b"HTTP/1.1 200"), head
    await reader.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
    # The page takes the app's path (a body header), then the next request waits to write.
    writer.write(
        b"GET /api/channels/" + CHANNEL.encode() + b"/events?limit=1000 HTTP/1.1\r\n"
        b"host: test\r\ncontent-length: 0\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)

    async def shutting_down() -> bool:
        return "shutting down" in server.log().lower()

    await eventually(shutting_down, timeout=20)
    writer.write(_publish(orjson.dumps({"type": "late", "data": {}})))
    rest = await asyncio.wait_for(reader.read(-1), 30)  # to the close
    writer.close()
    exit_code = await asyncio.to_thread(server.terminate, 20)
    assert exit_code in (0, -signal.SIGTERM)

    answers = rest.split(b"HTTP/1.1 ")[1:]  # the page's body holds no such text
    assert len(answers) == 2, [a[:200] for a in answers]
    assert answers[0].startswith(b"200 "), answers[0][:200]
    assert b'{"status":"ok"}' in answers[0]
    late_head, _, late_body = answers[1].partition(b"\r\n\r\n")
    lines = late_head.decode().lower().split("\r\n")
    assert lines[0] == "503 service unavailable", answers[1]
    assert "retry-after: 2" in lines
    assert "connection: close" in lines
    assert orjson.loads(late_body)["error"]["code"] == "unavailable"
