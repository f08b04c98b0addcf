"""Plain `uvicorn app.main:app`: a WebSocket of uvicorn's stock sans-I/O protocol gets
`fourcast.frames` (app/server/websocket.py) once the app has accepted it.

uvicorn builds every WebSocket with the protocol class its command line names. `adopt` gives such
a connection the extension through the same two functions as fourcast's own protocol
(`write_now`, `send_frames`), and a fan-out gate kept by its flow control.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from . import FRAMES_MESSAGE as MESSAGE
from .conformance import conforming
from .flag import FlowGate, Gated
from .internals import holds as internals_hold
from .stalled import keepalive_ping, keepalive_timeout, watch_stalls
from .websocket import answer_ping, forget_handshake, send_frames, write_now


class Adopted:
    """`fourcast.frames` for a connection served by uvicorn's stock sans-I/O protocol. Its
    `writable` Event becomes a `FlowGate`, so that the fan-out gets a gate here too: open while
    the socket takes bytes and the connection is neither lost nor closed. (Every place the stock
    protocol marks `close_sent`, bar the app's own close, also closes the transport; the
    fan-out's socket reads both.)"""

    __slots__ = ("flow", "protocol")

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self.protocol = protocol
        self.flow = FlowGate(partial(_finished, protocol))
        self.flow.set()  # adopted only while writable: see `adopt`
        protocol.writable = self.flow  # type: ignore[assignment]  # asyncio.Event's look-alike

    def write(self, frames: bytes) -> bool:
        return write_now(self.protocol, frames)

    def fan_out(self, gate: Gated) -> AdoptedSocket:
        """As `FramesWebSocketProtocol.fan_out`, with the flow control keeping the gate."""
        if self.flow.gated is not None:
            raise RuntimeError("fan_out is given one gate per connection")
        self.flow.gated = gate
        self.flow.regate()
        return AdoptedSocket(self.protocol)

    async def send(self, message: Any) -> None:
        if message["type"] == MESSAGE:
            await send_frames(self.protocol, message["frames"])
        else:
            await self.protocol.send(message)


class AdoptedSocket:
    """Where the fan-out writes to an adopted connection: its transport's `write`, closing
    once the transport is or once `close_sent` is marked (the app's own close marks it with the
    transport still open). One Python call per event per reader, on plain uvicorn only."""

    __slots__ = ("protocol", "transport", "write")

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self.protocol = protocol
        self.transport = protocol.transport
        self.write = protocol.transport.write

    def is_closing(self) -> bool:
        return bool(self.protocol.close_sent or self.transport.is_closing())


def adopt(send: Any) -> tuple[dict[str, Any], Any] | None:
    """The extension and the `send` that understands its message, for an accepted connection
    whose ASGI `send` is the stock sans-I/O protocol's own (plain uvicorn passes it unwrapped);
    None under any other server, with compression, or when the internals check finds uvicorn changed."""
    protocol = getattr(send, "__self__", None)
    if (
        type(protocol) is not WebSocketsSansIOProtocol
        or not protocol.handshake_complete
        or protocol.conn.extensions  # permessage-deflate: frames differ per connection
        or not internals_hold()
        or not protocol.writable.is_set()  # paused already: left to the ASGI path
        or _finished(protocol)
    ):
        return None
    forget_handshake(protocol)
    adopted = Adopted(protocol)
    return {"write": adopted.write, "fan_out": adopted.fan_out}, adopted.send


def bound_client(send: Any, limit: int) -> None:
    """The bounds fourcast's protocol keeps, given to a connection of uvicorn's stock protocol
    (plain uvicorn, or uvicorn given only `--ws`), whatever else it is adopted for:
    - its parser would inflate and buffer a message up to uvicorn's own `--ws-max-size`
      (16 MiB) before the app could refuse it (a few KiB of deflated zeros cost 16 MiB each):
      the app's limit is handed to the parser, which checks it frame by frame as it inflates
      (and closes 1009, as the app would);
    - a close between a message's fragments is an ordinary close there too (conformance.py);
    - its pongs are held back as fourcast's are (`answer_ping`);
    - its keepalive lets go of a peer that reads nothing while it is closed, and so does its
      writing staying paused, pings or none (stalled.py)."""
    protocol = getattr(send, "__self__", None)
    if not isinstance(protocol, WebSocketsSansIOProtocol) or not internals_hold():
        return
    parser = protocol.conn
    if parser.max_message_size is None or parser.max_message_size > limit:
        parser.max_message_size = limit
    conforming(parser)  # already so with fourcast's own protocol (at its start)
    if type(protocol) is WebSocketsSansIOProtocol:  # fourcast's own class does all this itself
        protocol.handle_ping = partial(answer_ping, protocol)  # type: ignore[method-assign]
        ping, timeout = protocol.send_keepalive_ping, protocol.keepalive_timeout
        protocol.send_keepalive_ping = partial(keepalive_ping, protocol, ping)  # type: ignore[method-assign]
        protocol.keepalive_timeout = partial(keepalive_timeout, protocol, timeout)  # type: ignore[method-assign]
        if protocol.ping_timer is not None:  # armed at the handshake, with uvicorn's own turn
            protocol.ping_timer.cancel()
            protocol.schedule_ping()
        watch_stalls(protocol)


def denied(send: Any) -> None:
    """The app refused the upgrade with an HTTP answer (sent in full): uvicorn's sans-I/O
    protocol, fourcast's included, does not count that handshake complete, and logs an ERROR
    ("ASGI callable returned without completing handshake") for each one: a line every
    refused client could make the server write. The answer was the handshake's end."""
    protocol = getattr(send, "__self__", None)
    if isinstance(protocol, WebSocketsSansIOProtocol) and protocol.close_sent and internals_hold():
        protocol.handshake_complete = True


def _finished(protocol: WebSocketsSansIOProtocol) -> bool:
    return bool(protocol.disconnected or protocol.close_sent)
