"""fourcast.client when a 200 is no answer of fourcast's (a captive portal's page, a proxy's
error page with the wrong status): the subscription drops that connection and asks again, as
after any drop, instead of ending with a traceback.

The server here is a stub on a loopback socket that scripts its answers; sleeps are injected
(nothing waits one out)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from app.client import Client, Status

PORTAL = b"<html><body>Sign in to the hotel Wi-Fi</body></html>"
PAGE = orjson.dumps(
    {
        "events": [{"id": "1", "channel": "public:x", "type": "t", "data": 1, "ts": 1.0}],
        "next": "1_0",
        "reset": False,
    }
)


class Stub:
    """Answers each request with the next of `answers` (content type, body), then the last
    again."""

    def __init__(self, answers: list[tuple[bytes, bytes]]) -> None:
        self.answers = answers
        self.asked: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.asked.append(head.split(b"\r\n")[0])
                kind, body = self.answers[min(len(self.asked), len(self.answers)) - 1]
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
                    % (kind, len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.fixture
async def portal_first() -> AsyncIterator[tuple[str, Stub]]:
    stub = Stub([(b"text/html", PORTAL), (b"application/json", PAGE)])
    server = await asyncio.start_server(stub.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", stub
    finally:
        server.close()


async def no_sleep(delay: float) -> None:
    await asyncio.sleep(0)


@pytest.mark.parametrize("after", ["0", None])
async def test_a_page_that_is_no_poll_answer_is_dropped_and_asked_again(
    portal_first: tuple[str, Stub], after: str | None
) -> None:
    """`after` None: the first request finds where "now" is; "0": it is the first poll."""
    url, stub = portal_first
    statuses: list[Status] = []
    async with Client(url, transport="shortpoll", sleep=no_sleep) as client:
        subscription = client.subscribe("public:x", after=after, on_status=statuses.append)
        event = await asyncio.wait_for(anext(aiter(subscription)), 20)
        await subscription.aclose()
    assert event.id == "1"
    assert any(s.state == "retrying" and "not a poll page" in (s.reason or "") for s in statuses), (
        statuses
    )
    assert len(stub.asked) >= 2
