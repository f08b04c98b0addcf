"""A method a route does not take is `405 method_not_allowed` with `Allow`, on every launch
path, for the URLs the fast lane serves before the router (a channel's stream, `/ws`) as for
the others; a plain HTTP GET of `/ws` is `426 upgrade_required` (docs/protocol.md)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.server import LAUNCH_COMMANDS, ServerProcess, Servers

STREAM = "/api/channels/public:x/stream"
EVENTS = "/api/channels/public:x/events"


@pytest.fixture(scope="module", params=tuple(LAUNCH_COMMANDS))
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    started = Servers(tmp_path_factory.mktemp("wrong-method"))
    yield started.start(launch=request.param)
    started.stop_all()


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code and error["message"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", STREAM, "GET, HEAD"),
        ("POST", STREAM, "GET, HEAD"),
        ("OPTIONS", STREAM, "GET, HEAD"),
        ("DELETE", "/api/channels/bad/stream", "GET, HEAD"),
        ("PUT", EVENTS, "GET, POST"),
        ("POST", "/ws", "GET, HEAD"),
        ("DELETE", "/metrics", "GET"),
    ],
)
async def test_a_wrong_method_is_405_naming_the_methods_taken(
    server: ServerProcess, method: str, path: str, allow: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        # A poll first: on plain uvicorn the connection's later requests take the quick lane.
        assert (await client.get(EVENTS)).status_code == 200
        response = await client.request(method, path)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allow


async def test_a_plain_get_of_the_websocket_url_is_426(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        response = await client.get("/ws")
        head = await client.head("/ws")
    assert_error(response, 426, "upgrade_required")
    assert response.headers["upgrade"] == "websocket"
    assert head.status_code == 426


async def test_the_stream_still_answers_a_get(server: ServerProcess) -> None:
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=20) as client,
        client.stream("GET", STREAM) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
