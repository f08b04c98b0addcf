"""Bad input gets the contract's status or close code and an error body, and hurts nobody else."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
import websockets
from websockets.asyncio.client import ClientConnection

from tests.clients import Reader, SseReader, WsReader, publish_many, sign_in
from tests.fixtures.server import ServerProcess

ALIVE = "public:alive"

# One server and one event loop for the module, so the bystanders watch every test.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bystanders(shared_server: ServerProcess) -> AsyncIterator[list[Reader]]:
    """Readers that must keep being served whatever the other tests throw at the server."""
    readers = [
        await SseReader(shared_server.url, ALIVE).start(),
        await WsReader(shared_server.url, ALIVE).start(),
    ]
    yield readers
    await publish_many(shared_server.url, ALIVE, 1, shared_server.service_headers)
    for reader in readers:
        await reader.wait_for(1, timeout=10)
        await reader.stop()
        assert len(reader.durable) == 1 and reader.closed_code is None, reader.transport


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def user_token(shared_server: ServerProcess) -> str:
    token, _ = await sign_in(shared_server.url, "mallory")
    return token


@pytest_asyncio.fixture(loop_scope="module")
async def client(
    shared_server: ServerProcess, bystanders: list[Reader]
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=shared_server.url, timeout=10) as c:
        yield c


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body


SERVICE = {"Authorization": "Bearer test-service-key-0123456789"}


@pytest.mark.parametrize("channel", ["no-namespace", "room:", "bad:name", "room:sp ace", "x" * 200])
async def test_invalid_channel_is_400(client: httpx.AsyncClient, channel: str) -> None:
    response = await client.post(
        f"/api/channels/{channel}/events", json={"type": "t", "data": 1}, headers=SERVICE
    )
    assert_error(response, 400, "invalid_channel")


@pytest.mark.parametrize("event_type", ["", "has space", "a" * 65, 7, None])
async def test_invalid_type_is_422(client: httpx.AsyncClient, event_type: Any) -> None:
    response = await client.post(
        "/api/channels/public:x/events", json={"type": event_type, "data": 1}, headers=SERVICE
    )
    assert_error(response, 422, "invalid_type")


async def test_invalid_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/channels/public:x/events", content=b'{"type": "t", "data":', headers=SERVICE
    )
    assert_error(response, 422, "invalid_json")


@pytest.mark.parametrize("body", [{"data": 1}, {"type": "t"}, [], "text"])
async def test_missing_fields_are_422(client: httpx.AsyncClient, body: Any) -> None:
    response = await client.post("/api/channels/public:x/events", json=body, headers=SERVICE)
    assert_error(response, 422)


async def test_oversize_body_is_413(client: httpx.AsyncClient) -> None:
    big = {"type": "t", "data": "x" * (70 * 1024)}
    response = await client.post("/api/channels/public:x/events", json=big, headers=SERVICE)
    assert_error(response, 413, "body_too_large")


async def test_oversize_chunked_body_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"type": "t", "data": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = await client.post("/api/channels/public:x/events", content=chunks(), headers=SERVICE)
    assert_error(response, 413, "body_too_large")


@pytest.mark.parametrize("cursor", ["abc", "-1", "1_x", "99999999999999999999999"])
async def test_bad_cursor_is_400(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get("/api/channels/public:x/events", params={"after": cursor})
    assert_error(response, 400, "invalid_cursor")
    response = await client.get("/api/channels/public:x/stream", params={"after": cursor})
    assert_error(response, 400, "invalid_cursor")


@pytest.mark.parametrize("wait", ["61", "-1", "soon"])
async def test_wait_out_of_range_is_400(client: httpx.AsyncClient, wait: str) -> None:
    response = await client.get(
        "/api/channels/public:x/events", params={"after": "0", "wait": wait}
    )
    assert_error(response, 400)


async def test_missing_credentials_are_401(client: httpx.AsyncClient) -> None:
    assert_error(
        await client.post("/api/channels/room:a/events", json={"type": "t", "data": 1}), 401
    )
    assert_error(await client.get("/api/channels/room:a/events"), 401)
    assert_error(await client.get("/api/channels/room:a/stream"), 401)


async def test_wrong_credentials_are_401(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": "Bearer not-a-real-token"}
    response = await client.post(
        "/api/channels/public:x/events", json={"type": "t", "data": 1}, headers=headers
    )
    assert_error(response, 401, "invalid_token")
    assert_error(
        await client.get("/api/channels/public:x/events", headers={"Authorization": "Basic abc"}),
        401,
    )


async def test_forbidden_namespace_is_403(client: httpx.AsyncClient, user_token: str) -> None:
    headers = {"Authorization": f"Bearer {user_token}"}
    response = await client.post(
        "/api/channels/public:news/events", json={"type": "t", "data": 1}, headers=headers
    )
    assert_error(response, 403, "forbidden")
    response = await client.post(
        "/api/channels/user:someone/events", json={"type": "t", "data": 1}, headers=headers
    )
    assert_error(response, 403, "forbidden")
    assert_error(
        await client.get("/api/channels/user:someone-else/events", headers=headers),
        403,
        "forbidden",
    )


async def test_foreign_origin_with_session_cookie_is_refused(
    shared_server: ServerProcess, user_token: str, bystanders: list[Reader]
) -> None:
    cookies = {"fourcast_session": user_token}
    foreign = {"Origin": "https://evil.example"}
    async with httpx.AsyncClient(base_url=shared_server.url, cookies=cookies) as client:
        response = await client.post(
            "/api/channels/room:a/events", json={"type": "t", "data": 1}, headers=foreign
        )
        assert_error(response, 403, "bad_origin")
        # The same request from the server's own origin is fine.
        own = {"Origin": shared_server.url}
        response = await client.post(
            "/api/channels/room:a/events", json={"type": "t", "data": 1}, headers=own
        )
        assert response.status_code == 201
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            shared_server.ws_url,
            origin=foreign["Origin"],
            additional_headers={"Cookie": f"fourcast_session={user_token}"},
        ):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    assert orjson.loads(refused.value.response.body)["error"]["code"] == "bad_origin"


async def test_websocket_handshake_with_bad_token_is_401(
    shared_server: ServerProcess, bystanders: list[Reader]
) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            shared_server.ws_url, subprotocols=["fourcast.v1", "fourcast.bearer.nope"]
        ):  # type: ignore[list-item]
            pass
    assert refused.value.response.status_code == 401


async def open_ws(server: ServerProcess, token: str | None = None) -> ClientConnection:
    protocols = ["fourcast.v1"] + ([f"fourcast.bearer.{token}"] if token else [])
    ws = await websockets.connect(server.ws_url, subprotocols=protocols, max_size=None)  # type: ignore[arg-type]
    welcome = orjson.loads(await ws.recv())
    assert welcome["op"] == "welcome"
    return ws


async def request(ws: ClientConnection, message: dict[str, Any] | str) -> dict[str, Any]:
    await ws.send(message if isinstance(message, str) else orjson.dumps(message).decode())
    return orjson.loads(await ws.recv())  # type: ignore[no-any-return]


async def test_websocket_recoverable_errors_keep_the_connection(
    shared_server: ServerProcess, user_token: str, bystanders: list[Reader]
) -> None:
    ws = await open_ws(shared_server, user_token)
    try:
        cases: list[tuple[dict[str, Any] | str, str]] = [
            ({"op": "dance", "ref": 1}, "unknown_op"),
            ("{not json", "invalid_json"),
            ("[1, 2]", "invalid_message"),
            ({"op": "subscribe", "channel": "bad channel", "ref": 2}, "invalid_channel"),
            ({"op": "subscribe", "channel": "user:not-me", "ref": 3}, "forbidden"),
            ({"op": "subscribe", "channel": "room:a", "after": "zzz", "ref": 4}, "invalid_cursor"),
            ({"op": "publish", "channel": "room:a", "ref": 5}, "missing_field"),
            (
                {"op": "publish", "channel": "public:a", "type": "t", "data": 1, "ref": 6},
                "forbidden",
            ),
            (
                {"op": "publish", "channel": "room:a", "type": "bad type", "data": 1, "ref": 7},
                "invalid_type",
            ),
        ]
        for message, code in cases:
            reply = await request(ws, message)
            assert reply["op"] == "error" and reply["code"] == code, (message, reply)
            assert reply["message"]
            if isinstance(message, dict):
                assert reply["ref"] == message["ref"]
        pong = await request(ws, {"op": "ping", "ts": 123, "ref": "p"})
        assert pong["op"] == "pong" and pong["ts"] == 123 and pong["ref"] == "p"
        # Echoed values nested deeper than orjson writes (254 levels) closed the socket 1011.
        deep = "[" * 300 + "1" + "]" * 300
        for message in (f'{{"op":"ping","ref":{deep}}}', f'{{"op":"dance","ref":{deep}}}'):
            reply = await request(ws, message)
            assert (reply["op"], reply["code"], reply["ref"]) == ("error", "invalid_message", None)
        reply = await request(ws, f'{{"op":"ping","ts":{deep},"ref":"q"}}')
        assert (reply["op"], reply["code"], reply["ref"]) == ("error", "invalid_input", "q")
        # A ref is a string or a number (docs/protocol.md), and so is a ping's ts: not true.
        reply = await request(ws, '{"op":"ping","ref":true}')
        assert (reply["op"], reply["code"], reply["ref"]) == ("error", "invalid_message", None)
        reply = await request(ws, '{"op":"ping","ts":false,"ref":"r"}')
        assert (reply["op"], reply["code"], reply["ref"]) == ("error", "invalid_input", "r")
    finally:
        await ws.close()


async def test_websocket_oversize_message_closes_1009(
    shared_server: ServerProcess, bystanders: list[Reader]
) -> None:
    ws = await open_ws(shared_server)
    await ws.send(orjson.dumps({"op": "ping", "pad": "x" * (65 * 1024)}).decode())
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_websocket_failed_auth_closes_1008(
    shared_server: ServerProcess, bystanders: list[Reader]
) -> None:
    ws = await open_ws(shared_server)
    await ws.send(orjson.dumps({"op": "auth", "token": "forged"}).decode())
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_websocket_auth_op_signs_in(
    shared_server: ServerProcess, user_token: str, bystanders: list[Reader]
) -> None:
    ws = await open_ws(shared_server)
    try:
        denied = await request(ws, {"op": "subscribe", "channel": "room:a", "ref": 1})
        assert denied["op"] == "error" and denied["code"] == "unauthorized"
        ack = await request(ws, {"op": "auth", "token": user_token, "ref": 2})
        assert ack["op"] == "ack" and ack["user"]["name"] == "mallory"
        ack = await request(ws, {"op": "subscribe", "channel": "room:a", "ref": 3})
        assert ack["op"] == "ack" and ack["channel"] == "room:a"
    finally:
        await ws.close()


async def test_ticket_is_single_use(
    shared_server: ServerProcess, user_token: str, bystanders: list[Reader]
) -> None:
    async with httpx.AsyncClient(
        base_url=shared_server.url, headers={"Authorization": f"Bearer {user_token}"}
    ) as client:
        ticket = (await client.post("/api/tickets")).json()["ticket"]
    async with httpx.AsyncClient(base_url=shared_server.url) as anonymous:
        first = await anonymous.get("/api/channels/room:a/events", params={"ticket": ticket})
        second = await anonymous.get("/api/channels/room:a/events", params={"ticket": ticket})
    assert first.status_code == 200
    assert_error(second, 401, "invalid_ticket")


async def test_unknown_route_is_404_with_error_body(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/nothing-here"), 404, "not_found")


async def test_signing_in_on_an_open_websocket_counts_against_the_person_cap(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(max_connections_per_user=1)
    token, _ = await sign_in(server.url, "capped")
    first, second = await open_ws(server), await open_ws(server)
    try:
        assert (await request(first, {"op": "auth", "token": token, "ref": 1}))["op"] == "ack"
        refused = await request(second, {"op": "auth", "token": token, "ref": 2})
        assert refused["op"] == "error" and refused["code"] == "rate_limited"
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize("limit", ["²", "①", "abc", "0", "501"])
async def test_bad_history_limit_is_400(
    client: httpx.AsyncClient, user_token: str, limit: str
) -> None:
    """Characters `str.isdigit` takes but `int` does not (superscripts, circled digits) too."""
    response = await client.get(
        "/api/rooms/lobby/messages",
        params={"limit": limit},
        headers={"Authorization": f"Bearer {user_token}"},
    )
    assert_error(response, 400, "bad_parameter")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/rooms/bad%20name/join"),
        ("POST", "/api/rooms/bad%20name/leave"),
        ("GET", "/api/rooms/bad%20name/members"),
        ("GET", "/api/rooms/bad%20name/messages"),
    ],
)
async def test_bad_room_in_the_path_is_400(
    client: httpx.AsyncClient, user_token: str, method: str, path: str
) -> None:
    """A bad room named in the path is a bad parameter, as a bad channel is; 422 is for bodies."""
    response = await client.request(method, path, headers={"Authorization": f"Bearer {user_token}"})
    assert_error(response, 400, "invalid_room")
    response = await client.post(
        "/api/rooms", json={"name": "bad name"}, headers={"Authorization": f"Bearer {user_token}"}
    )
    assert_error(response, 422, "invalid_room")


async def test_bad_person_in_the_path_is_400(client: httpx.AsyncClient) -> None:
    response = await client.delete(f"/api/people/{'x' * 65}/sessions", headers=SERVICE)
    assert_error(response, 400, "bad_parameter")


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/rooms/lobby/join"), ("GET", "/api/notifications"), ("POST", "/api/rooms")],
)
async def test_a_person_only_action_by_an_api_key_is_403(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    """The key is good (401 would say to sign in again); it just is no person."""
    response = await client.request(method, path, headers=SERVICE, json={"name": "x"})
    assert_error(response, 403, "forbidden")
    anonymous = await client.request(method, path, json={"name": "x"})
    assert_error(anonymous, 401)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"title": "  "}, "title must be a non-empty string"),
        ({"title": "t", "body": 7}, "body must be a string"),
    ],
)
async def test_a_bad_notification_field_is_named_with_what_it_must_be(
    client: httpx.AsyncClient, body: dict[str, Any], says: str
) -> None:
    response = await client.post(
        "/api/notifications", headers=SERVICE, json={"user": "someone", **body}
    )
    assert_error(response, 422, "invalid_notification")
    assert response.json()["error"]["message"] == says


@pytest.mark.parametrize(
    ("name", "value"),
    [("limit", "1_0"), ("limit", " 5"), ("limit", "+5"), ("limit", "\u0665"), ("wait", "1_0")],
)
async def test_a_number_that_is_not_plain_digits_is_400(
    client: httpx.AsyncClient, name: str, value: str
) -> None:
    """`int` would read these (`1_0` as 10); the contract's numbers are plain ASCII digits."""
    response = await client.get("/api/channels/public:x/events", params={"after": "0", name: value})
    assert_error(response, 400, "bad_parameter")
    assert response.json()["error"]["message"] == f"{name} must be an integer"


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_channels_past_the_per_socket_cap_are_refused_and_the_others_kept(
    start_server,
    launch: str,  # type: ignore[no-untyped-def]
) -> None:
    server = start_server(launch=launch, max_channels_per_socket=2)
    ws = await open_ws(server)
    try:
        for n in (1, 2):
            ok = await request(ws, {"op": "subscribe", "channel": f"public:cap-{n}", "ref": n})
            assert ok["op"] == "ack", ok
        refused = await request(ws, {"op": "subscribe", "channel": "public:cap-3", "ref": 3})
        assert refused["op"] == "error" and refused["code"] == "too_many", refused
        assert refused["message"] == "at most 2 channels per connection"
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            published = await client.post(
                "/api/channels/public:cap-2/events",
                json={"type": "t", "data": 1},
                headers=SERVICE,
            )
            assert published.status_code == 201
            event = orjson.loads(await ws.recv())  # the socket still follows its two channels
            assert event["channel"] == "public:cap-2", event
            metrics = (await client.get("/metrics")).text
        assert re.search(r"^fourcast_subscriptions 2\.0$", metrics, re.M), metrics
    finally:
        await ws.close()
