"""A WebSocket re-subscribe refused (its cursor resets over the read-from-the-start budget)
leaves the subscription it would have replaced in place: the connection still follows the
channel, each event once. On both launch paths."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
import websockets

from tests.clients import sign_in
from tests.fixtures.server import ServerFactory

LAUNCHES = ["python -m app", "uvicorn"]
CHANNEL = "room:lobby"
UNKNOWN = "999999"
"""A cursor the channel never issued: a reset, which reads from the start."""
WAIT = 10.0
"""A bound on failure only: each frame waited for comes at once."""


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_refused_resubscribe_keeps_the_subscription_it_would_replace(
    start_server: ServerFactory, launch: str
) -> None:
    # One read from the start, the next in 10,000 s: none comes back within the test.
    server = start_server(launch=launch, read_all_burst=1, read_all_rate=0.0001)
    token, _ = await sign_in(server.url, "reader")
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as client,
        websockets.connect(
            server.ws_url,
            subprotocols=["fourcast.v1", f"fourcast.bearer.{token}"],  # type: ignore[list-item]
        ) as ws,
    ):
        frames: list[dict[str, Any]] = []

        async def until(done: Any) -> dict[str, Any]:
            """Read frames (kept in `frames`) until one satisfies `done`."""
            while True:
                frame = orjson.loads(await asyncio.wait_for(ws.recv(), WAIT))
                frames.append(frame)
                if done(frame):
                    return frame

        async def op(**msg: object) -> dict[str, Any]:
            ref = len(frames)
            await ws.send(orjson.dumps({**msg, "ref": ref}).decode())
            return await until(lambda f: f.get("ref") == ref and f["op"] != "event")

        async def publish(text: str) -> str:
            sent = await client.post(
                f"/api/channels/{CHANNEL}/events",
                json={"type": "chat.message", "data": {"text": text}},
            )
            assert sent.status_code == 201, sent.text
            cursor: str = sent.json()["id"]
            await until(lambda f: f["op"] == "event" and f["id"] == cursor)
            return cursor

        await until(lambda f: f["op"] == "welcome")
        assert (await op(op="subscribe", channel=CHANNEL))["op"] == "ack"  # live
        await publish("one")
        replaced = await op(op="subscribe", channel=CHANNEL, after=UNKNOWN)  # the one read
        assert replaced["op"] == "ack", replaced
        refused = await op(op="subscribe", channel=CHANNEL, after=UNKNOWN)
        assert refused["op"] == "error" and refused["code"] == "rate_limited", refused
        two = await publish("two")  # reaches the connection: it still follows the channel
        three = await publish("three")
    ids = [f["id"] for f in frames if f["op"] == "event"]
    assert ids.count(two) == 1 and ids.count(three) == 1, ids
