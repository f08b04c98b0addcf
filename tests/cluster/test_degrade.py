"""Redis away: every feature that touches it answers "retry later", never an internal error.

A real node talks to the suite's redis-server through the fault proxy. Redis is then stopped
(SIGSTOP: a hung server), killed and restarted on the same port, or cut off by the proxy's
blackhole (a silent partition: no FIN, no RST). While it is away, every HTTP endpoint and WebSocket
op that needs Redis answers 503 + Retry-After (the error op with `retry_after`), no 500 and no 1011;
open WebSockets stay open; /readyz says 503. When it is back, /readyz says 200 and publishes work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.clients import WsReader, eventually
from tests.cluster.helpers import Person
from tests.fixtures.faultproxy import FaultProxy, fault_proxy
from tests.fixtures.redis import RedisServer
from tests.fixtures.server import ServerFactory, ServerProcess

pytestmark = pytest.mark.redis

ROOM = "room:degrade"
OUTAGE = 5.0
"""Seconds Redis stays away (at least: the probe round under way finishes)."""
TIMEOUT = 15.0
"""Per request: generous, it only bounds a hang."""
COMMAND_TIMEOUT = 1.0
"""The node's `redis_command_timeout`: a hung Redis is found out sooner than by the default
1.5 s. Nothing here depends on how soon: each probe is checked for what it answered. Still well
above a healthy command's time through the proxy on a busy machine."""


@pytest.fixture
def redis_proxy(redis_url: str, redis_server: RedisServer) -> Iterator[FaultProxy]:
    with fault_proxy("127.0.0.1", redis_server.port) as proxy:
        yield proxy


async def _http_probes(node: ServerProcess, person: Person) -> list[httpx.Response]:
    """One request to each endpoint that needs Redis (publishes of each kind, reads, presence)."""
    async with httpx.AsyncClient(base_url=node.url, timeout=TIMEOUT) as client:
        user = person.headers
        service = node.service_headers
        events = f"/api/channels/{ROOM}/events"
        return [
            await client.post(events, json={"type": "typing", "data": {}}, headers=user),
            await client.post(
                events, json={"type": "chat.message", "data": {"text": "hi"}}, headers=user
            ),
            await client.post(
                events,
                json={"type": "seq", "data": {"n": 1}},
                headers={**service, "Idempotency-Key": "degrade-1"},
            ),
            await client.post(
                events, json={"type": "nudge", "data": {}, "ephemeral": True}, headers=service
            ),
            await client.get(events, params={"after": "0"}, headers=user),
            await client.get(events, params={"after": "0", "wait": "1"}, headers=user),
            await client.get(f"/api/channels/{ROOM}/presence", headers=user),
            await client.post("/api/tickets", headers=user),
        ]


async def _ws_probes(ws: WsReader) -> list[dict[str, Any]]:
    return [
        await ws.request({"op": "publish", "channel": ROOM, "type": "typing", "data": {}}),
        await ws.request(
            {"op": "publish", "channel": ROOM, "type": "chat.message", "data": {"text": "x"}}
        ),
        await ws.request({"op": "subscribe", "channel": "room:degrade-other"}),
    ]


async def _ready(node: ServerProcess) -> int:
    async with httpx.AsyncClient(base_url=node.url, timeout=TIMEOUT) as client:
        return (await client.get("/readyz")).status_code


def _check_http(responses: list[httpx.Response]) -> None:
    for response in responses:
        request = f"{response.request.method} {response.request.url.path}"
        assert response.status_code != 500, f"{request}: {response.text}"
        if response.status_code >= 400:
            assert response.status_code == 503, f"{request}: {response.status_code} {response.text}"
            assert int(response.headers["Retry-After"]) >= 1, request
            assert response.json()["error"]["code"] == "unavailable", response.text


def _check_ws(replies: list[dict[str, Any]]) -> None:
    for reply in replies:
        assert reply["op"] in ("ack", "error"), reply
        if reply["op"] == "error":
            assert reply["code"] == "unavailable", reply
            assert reply["retry_after"] > 0, reply


@pytest.mark.parametrize("fault", ["freeze", "kill", "blackhole"])
async def test_features_answer_retry_later_while_redis_is_away_and_recover(
    fault: str,
    redis_server: RedisServer,
    redis_proxy: FaultProxy,
    start_server: ServerFactory,
) -> None:
    # Budgets out of the way: the probes repeat for the whole outage, and a refusal for going
    # over budget (429) is not what this test is about.
    node = start_server(
        redis_url=f"redis://{redis_proxy.url_host_port}/0",
        redis_command_timeout=COMMAND_TIMEOUT,
        typing_throttle=0,
        typing_rate=1000,
        typing_burst=10_000,
    )
    person = await Person.sign_in(node, "dee")
    ws = await WsReader(node.url, ROOM, token=person.token).start()

    async def ready() -> bool:
        return await _ready(node) == 200

    try:
        await eventually(ready, timeout=20, interval=0.1)  # healthy before the fault
        if fault == "freeze":
            redis_server.freeze()
        elif fault == "kill":
            redis_server.stop()
        else:
            redis_proxy.set_mode("blackhole")
        http: list[httpx.Response] = []
        replies: list[dict[str, Any]] = []
        try:
            began = time.monotonic()
            while True:  # probe round after round for the whole outage
                assert await _ready(node) == 503
                round_http = await _http_probes(node, person)
                round_ws = await _ws_probes(ws)
                # Publishing needs Redis: these cannot have succeeded while it was away.
                assert round_http[1].status_code == 503 and round_http[2].status_code == 503
                assert round_ws[1]["op"] == "error"
                http += round_http
                replies += round_ws
                if time.monotonic() - began >= OUTAGE:
                    break
                await asyncio.sleep(0.2)  # a client's pause between retries (pacing only)
            assert await _ready(node) == 503
        finally:
            if fault == "blackhole":
                redis_proxy.set_mode("pass")
            else:
                redis_server.thaw()
                redis_server.start()
        _check_http(http)
        _check_ws(replies)
        assert ws.closed_code is None, f"the WebSocket was closed with {ws.closed_code}"
        await eventually(ready, timeout=20, interval=0.1)

        # Back to normal, on the same open WebSocket and over HTTP.
        async def published() -> bool:
            reply = await ws.request(
                {"op": "publish", "channel": ROOM, "type": "chat.message", "data": {"text": "ok"}}
            )
            return reply["op"] == "ack"

        await eventually(published, timeout=20, interval=0.1)
        response = await person.publish(node, ROOM, "chat.message", {"text": "back"})
        assert response.status_code == 201, response.text
        assert ws.closed_code is None
        assert node.process is not None and node.process.poll() is None
        assert "unhandled" not in node.log(), node.log()[-3000:]
    finally:
        await ws.stop()
        await asyncio.sleep(0)
