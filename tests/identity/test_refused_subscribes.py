"""A stream or subscribe refused (a connection cap, a bad cursor, too many channels) spends no
subscribe budget; one opened still does, so the budget still refuses a client that opens too
many. On both launch paths."""

from __future__ import annotations

import httpx
import orjson
import pytest
import websockets

from tests.clients import eventually, sign_in
from tests.fixtures.server import ServerFactory

LAUNCHES = ["python -m app", "uvicorn"]
STREAM = "/api/channels/public:x/stream"
BUDGET = {"subscribe_burst": 2, "subscribe_rate": 0.001}
"""Two subscribes, the next one in 1,000 s: none comes back within a test."""


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_stream_refused_at_a_cap_or_for_its_cursor_spends_no_subscribe(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch, max_connections_per_user=1, **BUDGET)
    token, _ = await sign_in(server.url, "Reader")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:

        async def none_held() -> bool:
            text = (await client.get("/metrics")).text
            return "\nfourcast_connections_held 0.0\n" in text

        async with client.stream("GET", STREAM, headers=headers) as first:  # one subscribe
            assert first.status_code == 200
            for _ in range(3):
                capped = await client.get(STREAM, headers=headers)
                assert capped.status_code == 429, capped.text
                assert capped.json()["error"]["message"] == "too many connections for this user"
        await eventually(none_held)
        for _ in range(3):
            bad = await client.get(STREAM, headers=headers, params={"after": "bad"})
            assert bad.status_code == 400, bad.text
        async with client.stream("GET", STREAM, headers=headers) as second:  # the other
            assert second.status_code == 200
        await eventually(none_held)
        over = await client.get(STREAM, headers=headers)
        assert over.status_code == 429, over.text
        assert over.json()["error"]["message"] == "too many subscribes, slow down"


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_websocket_subscribe_refused_for_its_cursor_or_too_many_spends_no_subscribe(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch, max_channels_per_socket=1, **BUDGET)
    token, _ = await sign_in(server.url, "Reader")
    async with websockets.connect(
        server.ws_url,
        subprotocols=["fourcast.v1", f"fourcast.bearer.{token}"],  # type: ignore[list-item]
    ) as ws:

        async def op(**msg: object) -> dict[str, object]:
            await ws.send(orjson.dumps({**msg, "ref": 1}).decode())
            while True:
                reply: dict[str, object] = orjson.loads(await ws.recv())
                if reply.get("ref") == 1:
                    return reply

        for _ in range(3):
            bad = await op(op="subscribe", channel="public:a", after="bad")
            assert bad["op"] == "error", bad
        assert (await op(op="subscribe", channel="public:a"))["op"] == "ack"  # one subscribe
        for _ in range(3):
            many = await op(op="subscribe", channel="public:b")
            assert many["op"] == "error" and many["code"] == "too_many", many
        assert (await op(op="unsubscribe", channel="public:a"))["op"] == "ack"
        assert (await op(op="subscribe", channel="public:b"))["op"] == "ack"  # the other
        assert (await op(op="unsubscribe", channel="public:b"))["op"] == "ack"
        over = await op(op="subscribe", channel="public:a")
        assert over["op"] == "error" and over["code"] == "rate_limited", over
