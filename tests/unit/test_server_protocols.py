"""The uvicorn protocol subclasses (app/server/), their stand-ins for asyncio.Queue and
asyncio.Event, and the start-up check of the uvicorn internals they use (internals.py)."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from types import SimpleNamespace
from typing import Any

import httptools
import pytest
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from app.server import BODY_EXTENSION, FRAMES_EXTENSION, FRAMES_MESSAGE, internals
from app.server.quick import QuickHttpToolsProtocol, QuickRequest
from app.server.websocket import Flag, FramesWebSocketProtocol, ReceiveQueue
from app.server.websocket_adopt import adopt
from app.web.wire import text_frame


async def test_receive_queue_is_first_in_first_out_and_wakes_a_waiting_get() -> None:
    queue = ReceiveQueue()
    assert queue.empty()
    getting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getting.done()
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert await getting == "a"
    assert queue.qsize() == 1 and await queue.get() == "b" and queue.empty()


async def test_a_cancelled_get_loses_nothing() -> None:
    queue = ReceiveQueue()
    getting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    getting.cancel()
    await asyncio.gather(getting, return_exceptions=True)
    queue.put_nowait("kept")
    assert await asyncio.wait_for(queue.get(), 1) == "kept"


async def test_flag_waits_until_set_and_not_after() -> None:
    flag = Flag()
    assert not flag.is_set()
    waiting = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    flag.set()
    await asyncio.wait_for(waiting, 1)
    await asyncio.wait_for(flag.wait(), 1)  # already set: returns at once
    flag.clear()
    assert not flag.is_set()


# The protocol subclasses, driven with a fake transport (as uvicorn's own tests drive its
# protocols): bytes in through data_received, bytes out through the transport.


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def responses(self) -> list[bytes]:
        return [r for r in self.written.split(b"HTTP/1.1 ")[1:]]


class Gate:
    """What a fan-out hands the server (a sink's `set_gate`): records what it is told."""

    def __init__(self) -> None:
        self.open: bool | None = None

    def set_gate(self, is_open: bool) -> None:
        self.open = is_open


class App:
    """An ASGI app with a quick lane that answers `/quick` and declines everything else."""

    def __init__(self) -> None:
        self.state = SimpleNamespace(quick_lane=self.lane)
        self.lane_saw: list[tuple[str, bytes]] = []
        self.asgi_saw: list[str] = []
        self.held: QuickRequest | None = None
        self.streams: list[dict[str, Any]] = []
        self.gate_open_before_start: bool | None = None
        self.gate = Gate()
        self.socket: Any = None

    def lane(self, request: QuickRequest) -> bool:
        if request.path != "/quick":
            return False
        self.lane_saw.append((request.path, request.query))
        if request.query == b"hold":
            self.held = request  # answered later, from a callback
        else:
            request.respond(200, b"content-type: text/plain\r\n", b"quick")
        return True

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.asgi_saw.append(scope["path"])
        if scope["path"] == "/stream":
            extension = scope["extensions"][BODY_EXTENSION]
            self.streams.append(extension)
            # Asked before the response starts, as SSE does.
            self.socket = extension["fan_out"](self.gate)
            self.gate_open_before_start = self.gate.open
            headers = [(b"content-type", b"text/event-stream")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
            while (await receive())["type"] != "http.disconnect":
                pass  # until the client leaves
            return
        body = b"asgi"
        headers = [(b"content-length", b"4")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def http_protocol(app: App) -> tuple[QuickHttpToolsProtocol, Transport]:
    config = Config(app=app, lifespan="off", log_config=None, proxy_headers=False)
    protocol = QuickHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport


def get(path: str, version: str = "1.1") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: x\r\n\r\n".encode()


async def wait_for_bytes(transport: Transport, count: int) -> None:
    for _ in range(200):
        if len(transport.responses()) >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"expected {count} responses, got {transport.written!r}")


def assert_the_gate_follows_the_socket(protocol: Any, app: App, extension: dict[str, Any]) -> None:
    """A stream's gate shuts while writing is paused and opens again after; its disconnect
    callback runs when the connection is lost, and the gate shuts for good."""
    protocol.pause_writing()
    assert app.gate.open is False
    protocol.resume_writing()
    assert app.gate.open
    gone: list[bool] = []
    extension["on_disconnect"](lambda: gone.append(True))
    protocol.connection_lost(None)
    assert gone == [True] and app.gate.open is False


async def first_chunk_out(app: App, transport: Transport) -> dict[str, Any]:
    """The extension of the app's one `/stream`, once its first chunk (after the head) is out."""
    for _ in range(200):
        if transport.written.endswith(b"5\r\nfirst\r\n"):
            break
        await asyncio.sleep(0.005)
    (extension,) = app.streams
    return extension


async def test_the_quick_lane_answers_without_the_asgi_app() -> None:
    app = App()
    protocol, transport = http_protocol(app)
    protocol.data_received(get("/quick?a=1"))
    assert app.lane_saw == [("/quick", b"a=1")] and app.asgi_saw == []
    (response,) = transport.responses()
    assert response.startswith(b"200 OK\r\n") and response.endswith(b"\r\n\r\nquick")
    assert b"content-length: 5\r\n" in response and b"content-type: text/plain\r\n" in response
    assert not transport.closed  # keep-alive


class Recorder(App):
    """Its lane answers every request and notes the path and query it was given; the ASGI
    app notes what uvicorn's scope says."""

    def lane(self, request: QuickRequest) -> bool:
        self.lane_saw.append((request.path, request.query))
        request.respond(200, b"", b"quick")
        return True

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.asgi_saw.append(f"{scope['path']} {scope['query_string'].decode()}")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"asgi"})


@pytest.mark.parametrize(
    "target",
    [
        *("/quick", "/quick?a=1&b=2", "/quick?", "/quick?a?b=", "/qu%69ck?%41+b", "//h/quick?z"),
        *("/quick#f", "/quick?a#f?b", "/quick#f?a", "http://h/quick?a"),
    ],
)
async def test_the_lane_reads_a_target_as_uvicorn_does_or_leaves_it_to_uvicorn(target: str) -> None:
    """The lane splits an origin-form target itself (a fragment dropped, as uvicorn drops it):
    the path and query it is given are what uvicorn's scope would hold. A target in another
    form is left to uvicorn."""
    parsed = httptools.parse_url(target.encode())
    path = urllib.parse.unquote(parsed.path.decode())
    query = parsed.query or b""
    app = Recorder()
    protocol, transport = http_protocol(app)
    protocol.data_received(get(target))
    await wait_for_bytes(transport, 1)
    if target.startswith("/"):
        assert app.lane_saw == [(path, query)] and app.asgi_saw == []
    else:
        assert app.asgi_saw == [f"{path} {query.decode()}"] and app.lane_saw == []


async def test_a_declined_request_takes_the_asgi_path_and_pipelining_keeps_order() -> None:
    app = App()
    protocol, transport = http_protocol(app)
    protocol.data_received(get("/other") + get("/quick"))
    await wait_for_bytes(transport, 2)
    first, second = transport.responses()
    # Behind a request still on the ASGI path, the next one waits its turn there too.
    assert first.endswith(b"asgi") and second.endswith(b"asgi")
    assert app.asgi_saw == ["/other", "/quick"] and app.lane_saw == []
    protocol.data_received(get("/quick"))  # the connection is idle again: the lane answers
    assert transport.responses()[2].endswith(b"quick")


async def test_an_answer_given_later_is_written_and_a_gone_client_is_told() -> None:
    app = App()
    protocol, transport = http_protocol(app)
    protocol.data_received(get("/quick?hold"))
    assert transport.written == b"" and app.held is not None
    app.held.respond(200, b"", b"later")
    assert transport.responses()[0].endswith(b"later")
    gone: list[bool] = []
    protocol.data_received(get("/quick?hold"))
    app.held.on_disconnect = lambda: gone.append(True)
    protocol.connection_lost(None)
    assert gone == [True]


async def test_http_1_0_is_answered_then_closed() -> None:
    app = App()
    protocol, transport = http_protocol(app)
    protocol.data_received(get("/quick", version="1.0"))
    assert b"connection: close\r\n" in transport.written and transport.closed


async def test_the_body_extension_writes_chunks_and_reports_the_disconnect() -> None:
    app = App()
    protocol, transport = http_protocol(app)
    protocol.data_received(get("/stream"))
    await wait_for_bytes(transport, 1)
    extension = await first_chunk_out(app, transport)
    assert extension["write"](b"more") is True
    assert transport.written.endswith(b"4\r\nmore\r\n")
    # The fan-out's gate: open exactly while `write` would write; its socket is the transport.
    gate = app.gate
    assert app.gate_open_before_start is False and gate.open
    assert app.socket is transport and not app.socket.is_closing()
    protocol.pause_writing()
    assert not gate.open and extension["write"](b"x") is False
    protocol.resume_writing()
    assert gate.open
    cycle: Any = protocol.cycle
    cycle.response_complete = True  # what uvicorn sets on the last body
    assert not gate.open and extension["write"](b"x") is False
    cycle.response_complete = False
    assert gate.open
    gone: list[bool] = []
    extension["on_disconnect"](lambda: gone.append(True))
    protocol.connection_lost(None)
    assert gone == [True]
    assert not gate.open
    assert extension["write"](b"late") is False  # nothing is written to a gone client


def test_the_installed_uvicorn_has_every_internal_the_protocols_use() -> None:
    assert internals.missing() == []
    assert internals.fast_protocols("app") == {
        "http": "app.server.quick:QuickHttpToolsProtocol",
        "ws": "app.server.websocket:FramesWebSocketProtocol",
    }


def test_another_uvicorn_falls_back_to_stock_protocols_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(internals, "version", lambda name: "0.99.0")
    monkeypatch.setitem(internals.NEEDED, "uvicorn.protocols.utils:no_such_helper", ())
    with caplog.at_level(logging.WARNING, logger=internals.__name__):
        protocols = internals.fast_protocols("app")
    assert protocols == {"http": "httptools", "ws": "auto"}
    (record,) = caplog.records
    assert "0.99.0" in record.getMessage() and "no_such_helper" in record.getMessage()


def check_frames_writes(protocol: Any, transport: Transport, extension: dict[str, Any]) -> None:
    """An open socket's `write` takes frames at once, declines while paused or once gone, and
    the handshake is not kept."""
    assert extension["write"](text_frame(b"now")) is True
    assert transport.written.endswith(text_frame(b"now"))
    assert protocol.request is None and protocol.response is None  # not kept once open
    protocol.pause_writing()
    assert extension["write"](text_frame(b"paused")) is False  # the app awaits instead
    protocol.resume_writing()
    protocol.connection_lost(None)
    assert extension["write"](text_frame(b"gone")) is False


HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


async def test_the_frames_extension_writes_prebuilt_websocket_frames() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        seen.append(scope["extensions"][FRAMES_EXTENSION])
        await send({"type": FRAMES_MESSAGE, "frames": text_frame(b"sent")})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    config = Config(app=app, lifespan="off", log_config=None, ws_per_message_deflate=False)
    protocol = FramesWebSocketProtocol(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    protocol.data_received(HANDSHAKE + b"\r\n")
    for _ in range(200):
        if transport.written.endswith(text_frame(b"sent")):
            break
        await asyncio.sleep(0.005)
    assert transport.written.startswith(b"HTTP/1.1 101 ")
    assert transport.written.endswith(text_frame(b"sent"))
    (extension,) = seen
    gate = Gate()
    socket = extension["fan_out"](gate)
    assert gate.open and socket is transport and not socket.is_closing()
    check_gate_follows_the_socket(protocol)
    check_frames_writes(protocol, transport, extension)
    assert not gate.open and socket.is_closing()


def check_gate_follows_the_socket(protocol: FramesWebSocketProtocol) -> None:
    """The fan-out's gate is open exactly while `write` would write (see app/bus/fanout.py)."""
    gate: Any = protocol.gate
    protocol.pause_writing()  # the write buffer is over its high-water mark
    assert not gate.open
    protocol.resume_writing()
    assert gate.open
    protocol.close_sent = True  # e.g. the app closed the socket: no frame may follow
    assert not gate.open and protocol.close_sent
    protocol.close_sent = False
    assert gate.open
    protocol.disconnected = True
    assert not gate.open and protocol.disconnected
    protocol.disconnected = False
    assert gate.open


async def test_the_gate_opens_only_once_the_handshake_is_complete() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close"})  # refused: no handshake, no frames

    config = Config(app=app, lifespan="off", log_config=None, ws_per_message_deflate=False)
    protocol = FramesWebSocketProtocol(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    gate = Gate()
    assert protocol.fan_out(gate) is transport
    assert gate.open is False
    protocol.data_received(HANDSHAKE + b"\r\n")
    for _ in range(200):
        if transport.written:
            break
        await asyncio.sleep(0.005)
    assert transport.written.startswith(b"HTTP/1.1 403 ")
    assert protocol.handshake_complete and gate.open is False


async def open_stock_socket(app: Any, extra_headers: bytes = b"") -> tuple[Any, Transport]:
    """uvicorn's stock sans-I/O protocol (plain `uvicorn app.main:app`), handshaken over a
    recording transport, with `app` running until it has accepted."""
    config = Config(app=app, lifespan="off", log_config=None)  # uvicorn's defaults: deflate on
    protocol = WebSocketsSansIOProtocol(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    protocol.data_received(HANDSHAKE + extra_headers + b"\r\n")
    for _ in range(200):
        if transport.written.startswith(b"HTTP/1.1 101 ") and protocol.handshake_complete:
            break
        await asyncio.sleep(0.005)
    return protocol, transport


async def adoption(adopted: list[Any]) -> Any:
    """What the app's `adopt(send)` returned, once it has run: the extension and its `send`."""
    for _ in range(200):
        if adopted:
            break
        await asyncio.sleep(0.005)
    (result,) = adopted
    assert result is not None
    return result


async def test_plain_uvicorns_stock_protocol_is_adopted_into_the_frames_extension() -> None:
    adopted: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        adopted.append(adopt(send))
        while (await receive())["type"] != "websocket.disconnect":
            pass

    protocol, transport = await open_stock_socket(app)
    extension, send = await adoption(adopted)
    await send({"type": FRAMES_MESSAGE, "frames": text_frame(b"awaited")})
    assert transport.written.endswith(text_frame(b"awaited"))
    await send({"type": "websocket.send", "text": "plain"})  # everything else: uvicorn's own
    assert transport.written.endswith(text_frame(b"plain"))
    # The fan-out's gate: open exactly while `write` would write, kept by the flow control.
    gate = Gate()
    socket = extension["fan_out"](gate)
    assert gate.open and socket.is_closing() is False and socket.write == transport.write
    protocol.pause_writing()
    assert not gate.open and not extension["write"](text_frame(b"paused"))
    protocol.resume_writing()
    assert gate.open
    check_frames_writes(protocol, transport, extension)  # ends with the connection lost
    assert not gate.open


async def test_the_adopted_gate_stays_shut_once_the_app_has_closed() -> None:
    """The app's own close marks `close_sent` without closing the transport: the fan-out's
    socket says it is closing, and flow control does not reopen the gate afterwards."""
    adopted: list[Any] = []
    closed = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        adopted.append(adopt(send))
        await send({"type": "websocket.close", "code": 1000})  # as Starlette's close() does
        closed.set()

    protocol, transport = await open_stock_socket(app)
    await asyncio.wait_for(closed.wait(), 5)
    (result,) = adopted
    assert result is not None
    gate = Gate()
    socket = result[0]["fan_out"](gate)
    assert socket.is_closing() is True and not transport.closed and gate.open is False
    protocol.pause_writing()
    protocol.resume_writing()
    assert gate.open is False


@pytest.mark.parametrize("case", ["permessage-deflate", "wrapped send"])
async def test_the_stock_protocol_is_not_adopted_when_frames_would_be_wrong(case: str) -> None:
    """Compressed frames differ per connection, and a `send` that is not the protocol's own
    (middleware wrapped it) must see every message."""
    adopted: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        if case == "wrapped send":

            async def wrapped(message: Any) -> None:
                await send(message)

            adopted.append(adopt(wrapped))
        else:
            adopted.append(adopt(send))

    offer = b"Sec-WebSocket-Extensions: permessage-deflate\r\n" if case != "wrapped send" else b""
    protocol, transport = await open_stock_socket(app, offer)
    for _ in range(200):
        if adopted:
            break
        await asyncio.sleep(0.005)
    assert adopted == [None]
    if case == "permessage-deflate":
        assert b"permessage-deflate" in transport.written.split(b"\r\n\r\n")[0]
    protocol.connection_lost(None)
