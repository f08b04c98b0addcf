"""Tokens minted by the embedding application's backend (RS256, key from a JWKS file): every
transport, channel capabilities, refresh without reconnecting, and expiry."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import websockets

from tests.clients import TRANSPORTS, SseReader, WsReader, make_reader
from tests.fixtures.server import ServerProcess, Servers
from tests.identity.backend import Backend


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    return Backend(tmp_path_factory.mktemp("backend"))


@pytest.fixture(scope="module")
def app_server(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    servers = Servers(tmp_path_factory.mktemp("apptokens"))
    yield servers.start(app_jwks_file=backend.jwks_file)
    servers.stop_all()


def person() -> str:
    return f"ext-{uuid.uuid4().hex[:10]}"


async def service_publish(server: ServerProcess, channel: str, n: int) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        response = await client.post(
            f"/api/channels/{channel}/events",
            json={"type": "seq", "data": {"n": n}},
            headers=server.service_headers,
        )
        assert response.status_code == 201, response.text


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_backend_token_reads_its_own_channel_on_every_transport(
    app_server: ServerProcess, backend: Backend, transport: str
) -> None:
    sub = person()
    token = backend.mint(sub, name="Ext Person")
    reader = await make_reader(transport, app_server.url, f"user:{sub}", token=token).start()
    try:
        await service_publish(app_server, f"user:{sub}", 1)
        await reader.wait_for(1, timeout=10)
        assert [e["data"]["n"] for e in reader.durable] == [1]
    finally:
        await reader.stop()


async def test_a_backend_token_works_by_cookie_auth_op_and_ticket(
    app_server: ServerProcess, backend: Backend
) -> None:
    sub = person()
    token = backend.mint(sub, name="Ext")
    async with httpx.AsyncClient(base_url=app_server.url, timeout=10) as client:
        client.cookies.set("fourcast_session", token)
        me = await client.get("/api/session")
        assert me.json()["user"] == {"id": sub, "name": "Ext"}
        client.cookies.clear()
        ticket = await client.post("/api/tickets", headers={"Authorization": f"Bearer {token}"})
        assert ticket.status_code == 201
        polled = await client.get(
            f"/api/channels/user:{sub}/events", params={"ticket": ticket.json()["ticket"]}
        )
        assert polled.status_code == 200, polled.text
    async with websockets.connect(app_server.ws_url, subprotocols=["fourcast.v1"]) as ws:  # type: ignore[list-item]
        assert orjson.loads(await ws.recv())["op"] == "welcome"
        await ws.send(orjson.dumps({"op": "auth", "token": token, "ref": 1}).decode())
        assert orjson.loads(await ws.recv())["user"]["id"] == sub


async def test_a_channel_capability_grants_another_users_channel_only_when_claimed(
    app_server: ServerProcess, backend: Backend
) -> None:
    owner, reader_id = person(), person()
    plain = backend.mint(reader_id)
    granted = backend.mint(reader_id, channels={"read": [f"user:{owner}"], "publish": []})
    pattern = backend.mint(reader_id, channels={"read": [f"user:{owner[:6]}*"]})
    async with httpx.AsyncClient(base_url=app_server.url, timeout=10) as client:
        url = f"/api/channels/user:{owner}/events"
        refused = await client.get(url, headers={"Authorization": f"Bearer {plain}"})
        assert refused.status_code == 403
        for token in (granted, pattern):
            allowed = await client.get(url, headers={"Authorization": f"Bearer {token}"})
            assert allowed.status_code == 200, allowed.text
        # Reading is not publishing.
        published = await client.post(
            url, json={"type": "t", "data": 1}, headers={"Authorization": f"Bearer {granted}"}
        )
        assert published.status_code == 403
    reader = await WsReader(app_server.url, f"user:{owner}", token=granted).start()
    try:
        await service_publish(app_server, f"user:{owner}", 7)
        await reader.wait_for(1, timeout=10)
        assert reader.durable[0]["data"] == {"n": 7}
    finally:
        await reader.stop()


async def test_a_refresh_cannot_keep_a_channel_its_new_token_no_longer_grants(
    app_server: ServerProcess, backend: Backend
) -> None:
    """Capabilities shrink with the token: a refresh (or auth) whose token would not let the
    connection subscribe to a channel it follows is refused, and changes nothing."""
    owner, reader_id = person(), person()
    granted = backend.mint(reader_id, channels={"read": [f"user:{owner}"]})
    reader = await WsReader(app_server.url, f"user:{owner}", token=granted).start()
    try:
        for op in ("refresh", "auth"):
            reply = await reader.request({"op": op, "token": backend.mint(reader_id)})
            assert (reply["op"], reply.get("code")) == ("error", "forbidden"), reply
        still = backend.mint(reader_id, ttl=600, channels={"read": [f"user:{owner[:4]}*"]})
        assert (await reader.request({"op": "refresh", "token": still}))["op"] == "ack"
    finally:
        await reader.stop()


async def test_refresh_before_exp_keeps_the_socket_open_past_it(
    app_server: ServerProcess, backend: Backend
) -> None:
    sub = person()
    first, first_exp = backend.mint_expiring_in(sub, 2)
    reader = await WsReader(app_server.url, f"user:{sub}", token=first).start()
    try:
        later = backend.mint(sub, ttl=300)
        reply = await reader.request({"op": "refresh", "token": later})
        assert reply["op"] == "ack", reply
        # A refresh for someone else is refused, and changes nothing.
        other = await reader.request({"op": "refresh", "token": backend.mint(person())})
        assert other["code"] == "identity_change"
        # Wait for the first token's exp to pass, watching the socket the whole time.
        while time.time() < first_exp + 1:
            assert not reader.ended.is_set(), reader.closed_code
            await asyncio.sleep(0.1)
        await service_publish(app_server, f"user:{sub}", 1)
        await reader.wait_for(1, timeout=10)
        assert not reader.ended.is_set() and reader.durable[0]["data"] == {"n": 1}
    finally:
        await reader.stop()


async def test_without_refresh_the_socket_closes_4401_at_exp_and_the_stream_ends(
    app_server: ServerProcess, backend: Backend
) -> None:
    sub = person()
    token, exp = backend.mint_expiring_in(sub, 2)
    ws = await WsReader(app_server.url, f"user:{sub}", token=token).start()
    sse = await SseReader(app_server.url, f"user:{sub}", token=token).start()
    try:
        await asyncio.wait_for(ws.ended.wait(), exp - time.time() + 10)
        closed_at = time.time()
        assert ws.closed_code == 4401
        assert exp - 0.2 <= closed_at <= exp + 1.0, closed_at - exp
        await asyncio.wait_for(sse.ended.wait(), 10)
        assert time.time() >= exp - 0.2
    finally:
        await ws.stop()
        await sse.stop()
    # The expired token opens nothing any more.
    async with httpx.AsyncClient(base_url=app_server.url, timeout=10) as client:
        late = await client.get(
            f"/api/channels/user:{sub}/events", headers={"Authorization": f"Bearer {token}"}
        )
        assert late.status_code == 401 and late.json()["error"]["code"] == "token_expired"


async def test_tokens_of_an_unknown_key_or_too_long_a_life_are_refused(
    app_server: ServerProcess, backend: Backend, tmp_path: Path
) -> None:
    stranger = Backend(tmp_path, kid="stranger")
    sub = person()
    async with httpx.AsyncClient(base_url=app_server.url, timeout=10) as client:
        for token in (stranger.mint(sub), backend.mint(sub, ttl=365 * 24 * 3600)):
            response = await client.get(
                f"/api/channels/user:{sub}/events", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 401, response.text


async def test_guest_sign_in_is_off_where_the_application_vouches_for_people(
    app_server: ServerProcess, backend: Backend, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=app_server.url, timeout=10) as client:
        refused = await client.post("/api/session", json={"name": "Employee"})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "guest_signin_disabled"
        # Nobody got in: a room still needs someone.
        assert (await client.get("/api/channels/room:board/events")).status_code == 401
    # An operator may turn it on again next to the application's tokens.
    servers = Servers(tmp_path)
    try:
        both = servers.start(app_jwks_file=backend.jwks_file, guest_signin="true")
        async with httpx.AsyncClient(base_url=both.url, timeout=10) as client:
            assert (await client.post("/api/session", json={"name": "Guest"})).status_code == 201
    finally:
        servers.stop_all()


async def test_a_new_persons_first_requests_at_once_all_succeed(
    app_server: ServerProcess, backend: Backend
) -> None:
    """A person known only by the application's token gets a row on first use: first requests
    made at once (joining rooms while creating others) must not race to insert it."""
    async with httpx.AsyncClient(base_url=app_server.url, timeout=20) as client:
        for _ in range(5):
            sub = person()
            headers = {"Authorization": f"Bearer {backend.mint(sub, name='Racer')}"}
            answers = await asyncio.gather(
                *(
                    client.post(f"/api/rooms/race-{sub}-{n}/join", headers=headers)
                    for n in range(2)
                ),
                *(
                    client.post("/api/rooms", json={"name": f"{sub}-{n}"}, headers=headers)
                    for n in range(3)
                ),
            )
            assert [a.status_code for a in answers] == [200, 200, 201, 201, 201], [
                a.text for a in answers
            ]


@pytest.mark.parametrize("sub", ["auth0|5f0c3a7d", "alice@example.com", "x" * 65, "a b"])
async def test_a_sub_no_channel_can_be_named_after_is_refused(
    app_server: ServerProcess, backend: Backend, sub: str
) -> None:
    """A person's channel is `user:<sub>`: a sub that cannot name a channel would sign in and
    then never read their own notifications, so it is refused with the rule it breaks."""
    token = backend.mint(sub, name="Odd")
    async with httpx.AsyncClient(base_url=app_server.url, timeout=10) as client:
        me = await client.get("/api/session", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401, me.text
    assert me.json()["error"]["code"] == "invalid_token"
    assert "A-Za-z0-9" in me.json()["error"]["message"]
