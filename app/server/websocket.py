"""uvicorn's sans-I/O WebSocket protocol, plus one ASGI extension: `fourcast.frames`.

Without compression, the frame a server sends for an event is the same bytes for every client
(server frames are not masked). The extension lets the app hand over such pre-built frames, many
at once (awaited like any send, or written at once from a callback when the socket is not
paused), so fanning an event out to N connections costs N buffer writes instead of N trips through
ASGI, UTF-8 encoding and framing. The app uses it only when a connection's scope advertises it,
so under any other server it falls back to ordinary `websocket.send` messages.

Plain `uvicorn app.main:app` serves with uvicorn's stock sans-I/O protocol, the class this one
extends: app/server/websocket_adopt.py gives such a connection the same extension.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from . import FRAMES_EXTENSION as EXTENSION
from . import FRAMES_MESSAGE as MESSAGE
from .conformance import conforming
from .flag import Flag, Gated, GatedFlag
from .stalled import keepalive_ping, keepalive_timeout, writing_paused, writing_resumed
from .sweep import Sweep, server_sweep


def write_now(protocol: WebSocketsSansIOProtocol, frames: bytes) -> bool:
    """Write pre-built frames at once if the socket takes them without waiting; False tells the
    app to use the awaited `fourcast.frames` message instead."""
    if (
        not protocol.writable.is_set()
        or protocol.disconnected
        or not protocol.handshake_complete
        or protocol.close_sent
        or protocol.transport.is_closing()
    ):
        return False
    protocol.transport.write(frames)
    return True


async def send_frames(protocol: WebSocketsSansIOProtocol, frames: bytes) -> None:
    await protocol.writable.wait()  # the same flow control as every other send
    if protocol.disconnected:
        raise ClientDisconnected()
    if not protocol.handshake_complete or protocol.close_sent or protocol.transport.is_closing():
        raise RuntimeError("fourcast.frames sent outside an open WebSocket")
    protocol.transport.write(frames)


PONGS_HELD_BACK = 4 << 20
"""Bytes waiting in a connection's transport past which its pongs are dropped, not queued."""


def answer_ping(protocol: WebSocketsSansIOProtocol) -> None:
    """uvicorn writes each pong whatever the socket's state, and reading is paused only after
    data messages: a peer that sends pings and reads nothing grew the server's memory without
    end. Past the bound its pongs are dropped (an endpoint may answer only the latest ping)."""
    output = protocol.conn.data_to_send()
    if protocol.transport.get_write_buffer_size() > PONGS_HELD_BACK:
        return
    protocol.transport.write(b"".join(output))


def forget_handshake(protocol: WebSocketsSansIOProtocol) -> None:
    """The handshake's request and response (and their headers) are not needed again; an idle
    connection should not carry them for its whole life. The request's headers are emptied in
    place: the sans-I/O parser's generator frame keeps the request for as long as it lives."""
    if protocol.request is not None:
        protocol.request.headers.clear()
    protocol.request = protocol.response = None  # type: ignore[assignment]


class FramesWebSocketProtocol(WebSocketsSansIOProtocol):
    # Slots for ours and for uvicorn's keepalive state: what is left in the instance dict stays
    # under the size past which Python stops sharing its keys with other instances (a dict of
    # its own is five times larger, for every open connection).
    __slots__ = (
        "_close_sent",
        "_disconnected",
        "_handshake_complete",
        "flag",
        "gate",
        "last_ping_rtt",
        "pending_ping_payload",
        "ping_interval",
        "ping_sent_at",
        "ping_timeout",
        "ping_timer",
        "pings",
        "pong_timer",
        "request",
        "response",
        "scope",
    )

    def __init__(
        self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: Any = None
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.pings: Sweep[FramesWebSocketProtocol] = server_sweep(server_state, "pings", _ping)
        conforming(self.conn)  # RFC 6455 5.4: see app/server/conformance.py
        # uvicorn's asyncio.Queue and asyncio.Event hold four deques between them, per
        # connection, for a queue that is nearly always empty and a flag: see ReceiveQueue.
        self.queue = ReceiveQueue()  # type: ignore[assignment]
        self.flag = Flag()
        self.writable = self.flag  # type: ignore[assignment]  # asyncio.Event's look-alike
        self.flag.set()
        self.gate: Gated | None = None
        """The fan-out's, once it asks (`fan_out`)."""

    # The gate is open while `write_now` would write: the state it checks, kept in one place
    # by the setters uvicorn's own assignments go through.
    def regate(self) -> None:
        gate = getattr(self, "gate", None)  # None in uvicorn's __init__, before ours ran
        if gate is not None:
            gate.set_gate(
                bool(
                    self.handshake_complete
                    and self.flag.value
                    and not self.close_sent
                    and not self.disconnected
                )
            )

    def fan_out(self, gate: Gated) -> asyncio.Transport:
        """The extension's `fan_out`, once per connection: `gate` is kept told whether `write_now` would write (but
        for the transport closing, which the fan-out asks the transport itself), and the
        transport is returned: the fan-out writes to it with no call of ours per event per
        reader (transport.write never refuses: it buffers past what the socket takes, and the
        gate shuts at the buffer's high-water mark)."""
        if self.gate is not None:
            raise RuntimeError("fan_out is given one gate per connection")
        self.gate = gate
        self.regate()
        return self.transport

    handshake_complete = GatedFlag()
    close_sent = GatedFlag()
    disconnected = GatedFlag()

    def pause_writing(self) -> None:
        super().pause_writing()
        self.regate()
        writing_paused(self)  # let go if it stays paused (app/server/stalled.py)

    def resume_writing(self) -> None:
        super().resume_writing()
        self.regate()
        writing_resumed(self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        writing_resumed(self)

    # Keepalive pings: uvicorn's timing, with its timer per connection replaced by one sweep for
    # all of them (app/server/sweep.py). The pong deadline keeps its own timer: it is armed only
    # while a ping is in flight.
    def schedule_ping(self) -> None:
        assert self.ping_interval is not None
        delay = max(0.0, self.ping_interval - self.last_ping_rtt)
        self.pings.add(self, delay)

    def stop_keepalive(self) -> None:
        self.pings.discard(self)
        super().stop_keepalive()

    # While closing, the keepalive lets go of a peer that reads nothing (app/server/stalled.py).
    def send_keepalive_ping(self) -> None:
        keepalive_ping(self, super().send_keepalive_ping)

    def keepalive_timeout(self) -> None:
        keepalive_timeout(self, super().keepalive_timeout)

    # The extension's `write`: a bound method of each connection (no object of its own, and
    # no extra call per event per reader), the same function `Adopted.write` calls.
    write_now = write_now

    def handle_ping(self) -> None:
        answer_ping(self)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if getattr(self, "scope", None) is None:
            # Refused by websockets itself (a POST, no key, another version): uvicorn has
            # answered and closed it, with no scope and no app task. Raising here would leave
            # the connection counted as open for good.
            return
        # The app task is created but has not run yet; it sees the extension from the start.
        if not self.config.ws_per_message_deflate:
            self.scope["extensions"][EXTENSION] = {"write": self.write_now, "fan_out": self.fan_out}

    async def send(self, message: Any) -> None:
        if message["type"] == MESSAGE:
            await send_frames(self, message["frames"])
            return
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            forget_handshake(self)


def _ping(protocol: FramesWebSocketProtocol) -> None:
    protocol.send_keepalive_ping()


class ReceiveQueue:
    """The part of asyncio.Queue uvicorn's protocol uses (`put_nowait`, `get`, `empty`), kept in a
    list, with a waiter future only while the app is waiting: an idle connection holds an empty
    list instead of three deques and an Event."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiters: list[asyncio.Future[None]] = []

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                break

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    async def get(self) -> Any:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
        return self._items.pop(0)
