"""What operators rely on: metrics, readiness, expiring credentials, secrets kept out of logs."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import orjson
import pytest
import websockets

from tests.clients import WsReader, publish_many, sign_in
from tests.fixtures.server import ServerFactory, ServerProcess

SECRET = "test-secret-key-that-is-long-enough-0123456789"


async def test_metrics_count_deliveries_publishes_and_connections(server: ServerProcess) -> None:
    channel = "public:metered"
    reader = await WsReader(server.url, channel).start()
    await publish_many(server.url, channel, 5, server.service_headers)
    await reader.wait_for(5)
    async with httpx.AsyncClient(base_url=server.url) as client:
        await client.get(f"/api/channels/{channel}/events", params={"after": "0"})
        text = (await client.get("/metrics")).text
    await reader.stop()
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['fourcast_deliveries_total{transport="websocket"}'] == 5
    assert samples['fourcast_deliveries_total{transport="shortpoll"}'] == 5
    assert samples['fourcast_publishes_total{outcome="created"}'] == 5
    assert samples['fourcast_open_connections{transport="websocket"}'] == 1
    assert samples['fourcast_polls_answered_total{transport="shortpoll"}'] == 1
    assert samples['fourcast_delivery_latency_seconds_count{transport="websocket"}'] >= 1


async def test_publishes_refused_for_the_budget_are_counted(start_server: ServerFactory) -> None:
    """docs/operations.md, Limits: every budget's refusals are counted, the publishes' too
    (their budget is kept apart from the others, shared across nodes on Redis)."""
    server = start_server(publish_burst=2, publish_rate=0.01)
    token, _ = await sign_in(server.url, "eager")
    headers = {"Authorization": f"Bearer {token}"}
    message = {"type": "chat.message", "data": {"text": "hi"}}
    async with httpx.AsyncClient(base_url=server.url) as client:
        url = "/api/channels/room:eager/events"
        statuses = [(await client.post(url, json=message, headers=headers)).status_code]
        statuses.append((await client.post(url, json=message, headers=headers)).status_code)
        statuses.append((await client.post(url, json=message, headers=headers)).status_code)
        text = (await client.get("/metrics")).text
    assert statuses == [201, 201, 429]
    assert 'fourcast_budget_refusals_total{budget="publish"} 1.0' in text.splitlines()


async def test_readiness_reports_ready(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_expired_credentials_close_the_websocket_with_4401(server: ServerProcess) -> None:
    token = jwt.encode(
        {"sub": "short-lived", "name": "tim", "exp": int(time.time()) + 2},
        SECRET,
        algorithm="HS256",
    )
    ws = await websockets.connect(
        server.ws_url, subprotocols=["fourcast.v1", f"fourcast.bearer.{token}"]
    )  # type: ignore[list-item]
    welcome = orjson.loads(await ws.recv())
    assert welcome["user"]["id"] == "short-lived"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_an_expired_token_is_refused_with_401(server: ServerProcess) -> None:
    token = jwt.encode(
        {"sub": "old", "name": "o", "exp": int(time.time()) - 10}, SECRET, algorithm="HS256"
    )
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get(
            "/api/channels/room:a/events", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_expired"


async def test_tickets_and_tokens_in_urls_never_reach_the_access_log(
    start_server: ServerFactory,
) -> None:
    server = start_server(access_log=True)
    token, _ = await sign_in(server.url, "logged")
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        ticket = (await client.post("/api/tickets")).json()["ticket"]
        await client.get("/api/channels/room:a/events", params={"ticket": ticket, "token": token})
        await client.get("/api/channels/room:a/events", params={"ticket": "forged.value.here"})
        # The server reads a percent-encoded name as the plain one: so does the redaction.
        encoded = (await client.post("/api/tickets")).json()["ticket"]
        await client.get(f"/api/channels/room:a/x/events?%74icket={encoded}")
    server.stop()
    log = server.log()
    assert "/api/channels/room%3Aa/events" in log or "/api/channels/room:a/events" in log
    assert ticket not in log and token not in log and "forged.value.here" not in log
    assert encoded not in log
    assert "ticket=[redacted]" in log and "%74icket=[redacted]" in log


async def test_settings_are_validated_at_start_up(start_server: ServerFactory) -> None:
    with pytest.raises(RuntimeError) as failed:
        start_server(history_size=0)
    assert "FOURCAST_HISTORY_SIZE" in str(failed.value)
    assert "Traceback" not in str(failed.value)
    with pytest.raises(RuntimeError) as failed:
        start_server(api_keys="nocolon")
    assert "FOURCAST_API_KEYS" in str(failed.value)


async def test_the_server_prints_the_url_of_its_demo_pages(server: ServerProcess) -> None:
    assert f"fourcast: demo pages at {server.url}/" in server.log()
    async with httpx.AsyncClient(base_url=server.url) as client:
        for page in ("/", "/chat/lobby", "/compare"):
            response = await client.get(page)
            assert response.status_code == 200 and "text/html" in response.headers["content-type"]
