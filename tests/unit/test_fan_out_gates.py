"""The fan-out's gate as the servers keep it (app/server/http.py, websocket.py): told to the
reader's sink through the `fan_out` extension, once per response or connection, and kept right
when a request is pipelined behind a stream, when the handshake completes, and when an adopted
socket closes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from app.server.websocket import FramesWebSocketProtocol
from app.server.websocket_adopt import adopt
from tests.unit.test_server_protocols import (
    HANDSHAKE,
    App,
    Gate,
    Transport,
    adoption,
    assert_the_gate_follows_the_socket,
    first_chunk_out,
    get,
    http_protocol,
    open_stock_socket,
)


async def start_stream(app: App) -> tuple[Any, Transport, dict[str, Any]]:
    """An SSE-like stream (App's `/stream`) whose first chunk is out, its gate given."""
    protocol, transport = http_protocol(app)
    protocol.data_received(get("/stream"))
    extension = await first_chunk_out(app, transport)
    return protocol, transport, extension


async def test_a_request_pipelined_behind_a_stream_leaves_its_gate_with_the_socket() -> None:
    """uvicorn makes a pipelined request the protocol's cycle while the stream goes on: the
    stream's gate must still shut when the socket pauses (else the fan-out would buffer every
    event for a client that stopped reading), and the stream must hear its client go."""
    app = App()
    protocol, _, extension = await start_stream(app)
    assert app.gate.open
    protocol.data_received(get("/after"))
    assert protocol.cycle.scope["path"] == "/after"  # the stream is no longer `cycle`
    assert_the_gate_follows_the_socket(protocol, app, extension)


async def test_a_response_takes_one_gate() -> None:
    app = App()
    _, _, extension = await start_stream(app)
    with pytest.raises(RuntimeError):
        extension["fan_out"](Gate())
    assert app.gate.open  # the first is still told


def frames_protocol(app: Any) -> tuple[FramesWebSocketProtocol, Transport]:
    config = Config(app=app, lifespan="off", log_config=None, ws_per_message_deflate=False)
    protocol = FramesWebSocketProtocol(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport


async def test_a_gate_given_before_the_handshake_opens_once_it_completes() -> None:
    accepted = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        accepted.set()
        while (await receive())["type"] != "websocket.disconnect":
            pass

    protocol, transport = frames_protocol(app)
    gate = Gate()
    assert protocol.fan_out(gate) is transport and gate.open is False
    with pytest.raises(RuntimeError):
        protocol.fan_out(Gate())  # one gate per connection
    protocol.data_received(HANDSHAKE + b"\r\n")
    await asyncio.wait_for(accepted.wait(), 5)
    assert gate.open
    protocol.connection_lost(None)
    assert gate.open is False


async def test_an_adopted_socket_is_closing_once_the_app_closes_or_the_transport_does() -> None:
    """The production order: the gate is given while the socket is open, then the app closes
    it through its own `send` (Starlette's `close()`), which marks `close_sent` only."""
    adopted: list[Any] = []
    close_now, closed = asyncio.Event(), asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        adopted.append(adopt(send))
        await close_now.wait()
        await send({"type": "websocket.close", "code": 1000})
        closed.set()

    protocol, transport = await open_stock_socket(app)
    extension, _ = await adoption(adopted)
    gate = Gate()
    socket = extension["fan_out"](gate)
    assert gate.open and not socket.is_closing()
    with pytest.raises(RuntimeError):
        extension["fan_out"](Gate())  # one gate per connection
    transport.closed = True  # e.g. the peer's close answered: the transport closes first
    assert socket.is_closing()
    transport.closed = False
    close_now.set()
    await asyncio.wait_for(closed.wait(), 5)
    assert protocol.close_sent and not transport.closed and socket.is_closing()
