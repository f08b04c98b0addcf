"""Plain uvicorn's stock httptools protocol, adopted into the quick lane at a request the app sees
(app/server/quick_adopt.py): driven here over a recording transport, as uvicorn drives it. And
the lane's access-log line, which must read as uvicorn's."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string
from uvicorn.server import ServerState

from app.server import quick_request
from app.server.quick_adopt import AdoptedHttpToolsProtocol, adopt_connection
from app.server.quick_request import QuickRequest
from tests.unit.test_server_protocols import (
    App,
    Transport,
    assert_the_gate_follows_the_socket,
    first_chunk_out,
    get,
    http_protocol,
    wait_for_bytes,
)


class AdoptingApp(App):
    """The test app, adopting each HTTP request's connection as app/web/fastlane.py does."""

    def __init__(self) -> None:
        super().__init__()
        self.adopted: list[bool] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.adopted.append(adopt_connection(send))
        await super().__call__(scope, receive, send)


def stock_protocol(app: Any, **options: Any) -> tuple[HttpToolsProtocol, Transport]:
    """uvicorn's own protocol, as plain `uvicorn app.main:app` makes it (proxy headers on)."""
    config = Config(app=app, lifespan="off", log_config=None, **options)
    config.load()
    protocol = HttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport


def forwarded(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n".encode()


async def test_the_first_request_is_asgi_and_the_next_take_the_quick_lane() -> None:
    app = AdoptingApp()
    protocol, transport = stock_protocol(app)
    protocol.data_received(get("/quick"))
    await wait_for_bytes(transport, 1)
    assert app.asgi_saw == ["/quick"] and app.adopted == [True]
    assert type(protocol) is AdoptedHttpToolsProtocol
    protocol.data_received(get("/quick?a=1") + get("/quick?a=2"))
    assert app.lane_saw == [("/quick", b"a=1"), ("/quick", b"a=2")]
    assert app.asgi_saw == ["/quick"]  # nothing more on the ASGI path
    first, *rest = transport.responses()
    assert first.endswith(b"asgi") and [r[-5:] for r in rest] == [b"quick", b"quick"]
    # What the lane declines still takes the ASGI path, on the adopted connection.
    protocol.data_received(get("/other"))
    await wait_for_bytes(transport, 4)
    assert app.asgi_saw == ["/quick", "/other"] and transport.responses()[3].endswith(b"asgi")


async def test_a_stream_on_an_adopted_connection_gets_direct_writes_and_a_gate() -> None:
    """Once adopted, a stream on the same connection gets the extension, as under fourcast's
    own protocol (an SSE stream is then written to by the fan-out, with a gate)."""
    app = AdoptingApp()
    protocol, transport = stock_protocol(app)
    protocol.data_received(get("/other"))
    await wait_for_bytes(transport, 1)
    assert type(protocol) is AdoptedHttpToolsProtocol and app.streams == []
    protocol.data_received(get("/stream"))
    extension = await first_chunk_out(app, transport)
    assert app.gate.open and app.socket is transport
    assert extension["write"](b"next") and transport.written.endswith(b"4\r\nnext\r\n")
    protocol.pause_writing()
    assert app.gate.open is False


async def test_a_stream_opened_by_the_first_request_gets_direct_writes_and_a_gate_too() -> None:
    """Under plain uvicorn a reader's SSE stream is usually its connection's first request: the
    adoption offers it `fourcast.body`, kept told by the adopted class's methods."""
    app = AdoptingApp()
    protocol, transport = stock_protocol(app)
    protocol.data_received(get("/stream"))
    extension = await first_chunk_out(app, transport)
    assert app.adopted == [True] and type(protocol) is AdoptedHttpToolsProtocol
    assert app.gate_open_before_start is False and app.gate.open and app.socket is transport
    assert extension["write"](b"next") and transport.written.endswith(b"4\r\nnext\r\n")
    protocol.pause_writing()
    assert extension["write"](b"held") is False  # paused: the stream's own task writes it
    protocol.resume_writing()
    assert_the_gate_follows_the_socket(protocol, app, extension)


async def test_a_connection_is_not_adopted_while_its_parser_is_inside_a_message() -> None:
    """A read that ends inside a second request: when the app sees the first, the parser holds
    part of the second, which a new parser would lose. The first stays on uvicorn's path, the
    second is answered whole and adopts, and the next takes the lane."""
    app = AdoptingApp()
    protocol, transport = stock_protocol(app)
    second = get("/quick?2")
    protocol.data_received(get("/quick?1") + second[:12])
    await wait_for_bytes(transport, 1)
    assert app.adopted == [False] and type(protocol) is HttpToolsProtocol
    protocol.data_received(second[12:])
    await wait_for_bytes(transport, 2)
    assert app.adopted == [False, True] and app.asgi_saw == ["/quick", "/quick"]
    assert transport.responses()[1].endswith(b"asgi")
    protocol.data_received(get("/quick?3"))
    assert app.lane_saw == [("/quick", b"3")] and len(transport.responses()) == 3


async def test_a_forwarded_request_from_a_trusted_proxy_takes_the_asgi_path() -> None:
    """uvicorn's proxy-headers middleware trusts 127.0.0.1 (the test peer) by default and would
    take X-Forwarded-For as the client: such a request goes through it, on the ASGI path."""
    app = AdoptingApp()
    protocol, transport = stock_protocol(app)
    assert isinstance(protocol.app, ProxyHeadersMiddleware)
    protocol.data_received(get("/quick"))
    await wait_for_bytes(transport, 1)
    protocol.data_received(forwarded("/quick"))
    await wait_for_bytes(transport, 2)
    assert app.asgi_saw == ["/quick", "/quick"] and app.lane_saw == []
    protocol.data_received(get("/quick"))
    assert app.lane_saw == [("/quick", b"")]


async def test_a_peer_the_middleware_does_not_trust_keeps_the_lane_when_forwarding() -> None:
    app = AdoptingApp()
    protocol, transport = stock_protocol(app, forwarded_allow_ips="10.0.0.1")
    protocol.data_received(get("/quick"))
    await wait_for_bytes(transport, 1)
    protocol.data_received(forwarded("/quick"))
    assert app.lane_saw == [("/quick", b"")] and app.asgi_saw == ["/quick"]


@pytest.mark.parametrize(
    "request_head",
    [get("/quick", version="1.0"), b"GET /quick HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
)
async def test_a_connection_that_ends_with_its_response_is_not_adopted(request_head: bytes) -> None:
    """uvicorn's parser ignores what a client sends after a request that closes the connection;
    a new parser would read it (a 400, or an upgrade interleaved with the pending answer)."""
    app = AdoptingApp()
    protocol, transport = stock_protocol(app)
    protocol.data_received(request_head)
    await wait_for_bytes(transport, 1)
    assert app.adopted == [False] and type(protocol) is HttpToolsProtocol
    assert transport.closed


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_a_held_lane_answer_survives_the_socket_pausing(launch: str) -> None:
    """Flow control while a quick-lane request (no dict, no gate) is the connection's cycle:
    under fourcast's own protocol, and under plain uvicorn's once adopted."""
    app = AdoptingApp()
    protocol: Any
    if launch == "uvicorn":
        protocol, transport = stock_protocol(app)
        protocol.data_received(get("/quick"))
        await wait_for_bytes(transport, 1)
    else:
        protocol, transport = http_protocol(app)
    protocol.data_received(get("/quick?hold"))
    assert app.held is not None
    protocol.pause_writing()
    protocol.resume_writing()
    app.held.respond(200, b"", b"later")
    assert transport.responses()[-1].endswith(b"later")


@pytest.mark.parametrize("case", ["limit concurrency", "wrapped send", "no lane"])
async def test_the_connection_stays_uvicorns_where_the_lane_would_be_wrong(case: str) -> None:
    app = AdoptingApp()
    if case == "no lane":
        app.state.quick_lane = None  # the app's lifespan has not started it
    options = {"limit_concurrency": 100} if case == "limit concurrency" else {}
    outer: Any = app
    if case == "wrapped send":

        async def outer(scope: Any, receive: Any, send: Any) -> None:
            async def wrapped(message: Any) -> None:
                await send(message)

            await app(scope, receive, wrapped)

        outer.state = app.state  # type: ignore[attr-defined]
    protocol, transport = stock_protocol(outer, **options)
    for n in range(2):
        protocol.data_received(get("/quick"))
        await wait_for_bytes(transport, n + 1)
    assert type(protocol) is HttpToolsProtocol and app.adopted == [False, False]
    assert app.asgi_saw == ["/quick", "/quick"] and app.lane_saw == []


@pytest.mark.parametrize(
    ("client", "root", "path", "query"),
    [
        (("127.0.0.1", 5555), "", "/api/channels/public:x/events", b"after=3_1&wait=25"),
        (("::1", 80), "", "/a b/é", b""),
        (None, "/mounted here", "/x", b"q=1"),
    ],
)
def test_the_lanes_access_line_is_uvicorns(
    client: Any, root: str, path: str, query: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn logs its scope's path, which carries `--root-path` before the request's."""
    scope: Any = {"client": client, "path": root + path, "query_string": query}
    expected = f'{get_client_addr(scope)} - "GET {get_path_with_query_string(scope)} HTTP/1.1" 200'
    protocol: Any = SimpleNamespace(client=client, root_path=root)
    request = QuickRequest(protocol, path, query, [], keep_alive=True)
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        request._log_access(200)
        request._log_access(200)  # the second from the kept quoted path
    assert [r.getMessage() for r in caplog.records] == [expected, expected]


def test_the_lanes_access_line_is_an_info_record_of_uvicorns_access_logger(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_walk(*args: object) -> None:
        raise AssertionError("the lane's record is made without a walk up the stack")

    monkeypatch.setattr(quick_request.access_log, "findCaller", no_walk)
    protocol: Any = SimpleNamespace(client=("127.0.0.1", 1), root_path="")
    request = QuickRequest(protocol, "/x", b"", [], keep_alive=True)
    with caplog.at_level(logging.WARNING, logger="uvicorn.access"):
        request._log_access(200)  # below the logger's level: nothing
    assert caplog.records == []
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        request._log_access(404)
    [line] = caplog.records
    assert (line.name, line.levelname, line.args) == (
        "uvicorn.access",
        "INFO",
        ("127.0.0.1:1", "GET", "/x", "1.1", 404),
    )
    assert line.pathname == quick_request.__file__ and line.funcName == "_log_access"


def test_the_kept_quoted_paths_are_bounded() -> None:
    protocol: Any = SimpleNamespace(client=("127.0.0.1", 1), root_path="")
    for n in range(quick_request.QUOTED_KEPT + 5):
        QuickRequest(protocol, f"/p/{n}", b"", [], keep_alive=True)._log_access(200)
    assert 0 < len(quick_request._quoted) <= quick_request.QUOTED_KEPT
