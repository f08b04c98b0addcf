"""Every launch path gives the same answers: `python -m app` (fast protocols, the quick lane),
plain `uvicorn app.main:app` (stock protocols: a connection's first request through ASGI, its
later polls in the quick lane once the app adopts it), and uvicorn given the fast protocols on its
command line.

Servers with the same settings receive the same requests, over all four transports, as an
anonymous reader, a service (API key), a signed-in person (bearer token, session cookie, ticket),
and with bad input; answers are compared after removing what differs by nature (times, the
server's own clock in cursors, session ids, the Date header).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import websockets

from tests.clients import eventually
from tests.fixtures.server import API_KEY, LAUNCH_COMMANDS, ServerProcess, Servers

LAUNCHES = tuple(LAUNCH_COMMANDS)
CHANNEL = "public:parity"
HEADERS_COMPARED = ("content-type", "retry-after", "x-content-type-options", "referrer-policy")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    started = Servers(tmp_path_factory.mktemp("parity"))
    yield {launch: started.start(launch=launch) for launch in LAUNCHES}
    started.stop_all()


@pytest.fixture(scope="module")
def seeded(servers: dict[str, ServerProcess]) -> dict[str, ServerProcess]:
    """The same three events on each server's channel."""
    for server in servers.values():
        for n in range(3):
            response = httpx.post(
                f"{server.url}/api/channels/{CHANNEL}/events",
                json={"type": "t", "data": {"n": n}},
                headers=server.service_headers,
                timeout=30,  # a bound on failure: a durable publish on a busy machine
            )
            assert response.status_code == 201
    return servers


def normal(value: Any) -> Any:
    """An answer with what differs by nature taken out: times, clocks, ids of sessions."""
    if isinstance(value, dict):
        return {
            k: f"<{k}>" if k in ("ts", "user", "client_id") else normal(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [normal(v) for v in value]
    if isinstance(value, str):
        value = re.sub(r"^(\d+)_\d+$", r"\1_<clock>", value)  # a poll cursor's marker
        return re.sub(r"user:[0-9a-f]{16}", "user:<user>", value)
    return value


async def http_answer(
    server: ServerProcess, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        response = await client.get(path, headers=headers or {})
    body = orjson.loads(response.content) if response.content else None
    kept = {name: response.headers.get(name, "") for name in HEADERS_COMPARED}
    return response.status_code, kept, normal(body)


async def person(server: ServerProcess) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        body = (await client.post("/api/session", json={"name": "pat"})).json()
    return body["token"], body["user"]["id"]


async def ticket(server: ServerProcess, token: str) -> str:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post("/api/tickets", headers={"Authorization": f"Bearer {token}"})
    return str(response.json()["ticket"])


POLLS = {
    "short poll, anonymous": ("/api/channels/public:parity/events?after=1&limit=5", None),
    "short poll, history": ("/api/channels/public:parity/events?limit=2", None),
    "short poll, service": ("/api/channels/public:parity/events?after=0", "service"),
    "long poll with events": ("/api/channels/public:parity/events?after=0&wait=5", None),
    "long poll timed out": ("/api/channels/public:parity/events?after=3&wait=1", None),
    "never-written channel": ("/api/channels/public:parity-empty/events?after=0", None),
    "unknown cursor": ("/api/channels/public:parity/events?after=99", None),
    "bad limit": ("/api/channels/public:parity/events?limit=abc", None),
    "limit too big": ("/api/channels/public:parity/events?limit=100000", None),
    "bad wait": ("/api/channels/public:parity/events?wait=-1", None),
    "bad cursor": ("/api/channels/public:parity/events?after=x_1", None),
    "bad channel": ("/api/channels/nope/events", None),
    "escaped query": ("/api/channels/public:parity/events?after=%31&limit=%32", None),
    "room, anonymous": ("/api/channels/room:parity/events", None),
    "room, bad bearer": ("/api/channels/room:parity/events", "bad-bearer"),
    "room, not bearer": ("/api/channels/room:parity/events", "basic"),
    "room, person": ("/api/channels/room:parity/events?after=0&wait=1", "person"),
    "own user channel": ("/api/channels/user:{user}/events?after=0&wait=1", "person"),
    "other's user channel": ("/api/channels/user:someone/events", "person"),
    "room, cookie": ("/api/channels/room:parity/events?after=0&wait=1", "cookie"),
    "room, ticket": ("/api/channels/room:parity/events?after=0&wait=1&ticket={ticket}", None),
    "bad ticket": ("/api/channels/room:parity/events?ticket=nope", None),
    "service on a room": ("/api/channels/room:parity/events?after=0&wait=1", "service"),
    "stream, anonymous on a room": ("/api/channels/room:parity/stream", None),
    "stream, bad cursor": ("/api/channels/public:parity/stream?after=nope", None),
    "stream, bad channel": ("/api/channels/nope/stream", None),
}


async def ask(server: ServerProcess, path: str, credential: str | None) -> Any:
    token, user = await person(server)
    headers = {
        None: {},
        "service": {"Authorization": f"Bearer {API_KEY}"},
        "bad-bearer": {"Authorization": "Bearer nope"},
        "basic": {"Authorization": "Basic abc"},
        "person": {"Authorization": f"Bearer {token}"},
        "cookie": {"Cookie": f"fourcast_session={token}"},
    }[credential]
    path = path.replace("{user}", user)
    if "{ticket}" in path:
        path = path.replace("{ticket}", await ticket(server, token))
    return await http_answer(server, path, headers)


@pytest.mark.parametrize("case", list(POLLS))
async def test_polls_and_refusals_get_the_same_answer(
    seeded: dict[str, ServerProcess], case: str
) -> None:
    path, credential = POLLS[case]
    fast, *others = [await ask(seeded[launch], path, credential) for launch in LAUNCHES]
    assert others == [fast] * len(others)
    assert fast[1]["x-content-type-options"] == "nosniff"


async def test_a_ticket_is_single_use_on_both(seeded: dict[str, ServerProcess]) -> None:
    answers = []
    for launch in LAUNCHES:
        server = seeded[launch]
        token, _ = await person(server)
        once = await ticket(server, token)
        path = f"/api/channels/room:parity/events?ticket={once}"
        answers.append([await http_answer(server, path) for _ in range(2)])
    assert answers == [answers[0]] * len(LAUNCHES)
    first, second = answers[0]
    assert first[0] == 200 and second[0] == 401


async def test_a_parked_long_poll_is_woken_alike(seeded: dict[str, ServerProcess]) -> None:
    answers = []
    for launch in LAUNCHES:
        server = seeded[launch]
        channel = "public:parity-wake"
        waiting = asyncio.ensure_future(
            http_answer(server, f"/api/channels/{channel}/events?after=0&wait=30")
        )
        async with httpx.AsyncClient(base_url=server.url) as client:

            async def parked() -> bool:
                metrics = (await client.get("/metrics")).content
                return b"fourcast_long_polls_waiting 1.0" in metrics

            await eventually(parked)
            await client.post(
                f"/api/channels/{channel}/events",
                json={"type": "wake", "data": None},
                headers=server.service_headers,
            )
        answers.append(await asyncio.wait_for(waiting, 20))
    assert answers == [answers[0]] * len(LAUNCHES) and len(answers[0][2]["events"]) == 1


async def sse_frames(server: ServerProcess, count: int) -> list[bytes]:
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=20) as client,
        client.stream("GET", f"/api/channels/{CHANNEL}/stream?after=0") as response,
    ):
        assert response.status_code == 200
        frames: list[bytes] = []
        buffer = b""
        async for chunk in response.aiter_bytes():
            buffer += chunk
            *done, buffer = buffer.split(b"\n\n")
            frames += [f for f in done if f.startswith(b"id:")]
            if len(frames) >= count:
                return frames
    raise AssertionError("the stream ended early")


async def test_sse_streams_the_same_frames(seeded: dict[str, ServerProcess]) -> None:
    streams = [await sse_frames(seeded[launch], 3) for launch in LAUNCHES]
    stripped = [[re.sub(rb'"ts":[0-9.]+', b"", f) for f in frames] for frames in streams]
    assert stripped == [stripped[0]] * len(LAUNCHES)


async def websocket_answers(server: ServerProcess) -> list[Any]:
    url = server.url.replace("http://", "ws://") + "/ws"
    answers: list[Any] = []
    async with websockets.connect(url, subprotocols=["fourcast.v1"]) as ws:  # type: ignore[list-item]
        answers.append(normal(orjson.loads(await ws.recv())))
        for message in (
            {"op": "subscribe", "channel": CHANNEL, "after": "0", "ref": "a"},
            {"op": "subscribe", "channel": "nope", "ref": "b"},
            {"op": "subscribe", "channel": "room:parity", "ref": "c"},
            {"op": "dance", "ref": "d"},
        ):
            await ws.send(orjson.dumps(message).decode())
        while len(answers) < 8:
            answers.append(normal(orjson.loads(await asyncio.wait_for(ws.recv(), 20))))
    return answers


async def test_websockets_get_the_same_replies_and_events(
    seeded: dict[str, ServerProcess],
) -> None:
    fast, *others = [await websocket_answers(seeded[launch]) for launch in LAUNCHES]
    assert others == [fast] * len(others)
    assert [a["op"] for a in fast].count("event") == 3


async def stream_head(server: ServerProcess, request: bytes) -> list[bytes]:
    """The head of an SSE stream's answer to a raw request, its lines lower-cased."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    return head.lower().split(b"\r\n")


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /api/channels/public:parity/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /api/channels/public:parity/stream HTTP/1.0\r\nHost: x\r\n\r\n",
        b"GET /api/channels/public:parity/stream HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
async def test_a_stream_says_one_thing_of_its_connection(
    servers: dict[str, ServerProcess], request_head: bytes
) -> None:
    """The connection header is the server's: a stream whose connection ends with it says
    `close`, never `close` and `keep-alive` together."""
    for launch in LAUNCHES:
        head = await stream_head(servers[launch], request_head)
        assert head[0].startswith(b"http/1.1 200"), (launch, head)
        connection = [line for line in head if line.startswith(b"connection:")]
        closes = b"close" in request_head or b"HTTP/1.0" in request_head
        assert connection == ([b"connection: close"] if closes else []), (launch, head)
