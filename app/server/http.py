"""uvicorn's httptools protocol, plus one ASGI extension: `fourcast.body`.

An SSE stream spends most of its time parked, waiting for the next event; waking its task to
pass one chunk down the middleware chain costs more than the chunk. The extension gives the app a
synchronous `write(chunk) -> bool` for a streaming (chunked) response that has started: it writes
at once if the socket is not paused, and otherwise says no, so the app falls back to ordinary
`http.response.body` messages with their flow control. Any other server simply lacks the key.

For a fan-out, `fan_out(gated)` keeps `gated` told whether `write` would write now (the gate, see
flag.py) and returns the transport, whose own `write` takes bytes already framed as chunks
(`GatedCycle`).

It also offers `on_disconnect(callback)`: the callback runs from the protocol's `connection_lost`
(at once if the peer has already gone). Without it, noticing a disconnect needs a task parked in
`receive()` for the whole life of the stream, which is most of what an idle stream costs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from . import BODY_EXTENSION as EXTENSION
from .flag import Flag, Gated, GatedFlag

_CALLBACK = "fourcast_on_disconnect"
"""The cycle attribute holding the callback registered through `on_disconnect`."""
AHEAD = "fourcast_ahead"
"""The connection's flow-control attribute naming the response still being written when a
request pipelined behind it becomes the protocol's `cycle`: an SSE stream with a fan-out gate
(`gated`), or a long poll parked in the quick lane (app/server/quick.py). uvicorn tells only
the protocol's `cycle` that the connection is lost."""

log = logging.getLogger(__name__)


UNPARSED_BODY = b"invalid WebSocket upgrade request\n"
UNPARSED_UPGRADE = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(UNPARSED_BODY), UNPARSED_BODY)
)
"""The answer to an upgrade websockets could not parse (uvicorn gives none)."""


class FramesHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Requests waiting behind the one being answered: nearly always none, and an empty
        # deque is ten times the size of an empty list, for every open connection.
        self.pipeline = Pipeline()  # type: ignore[assignment]

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.flow._is_writable_event = set_flag()  # type: ignore[assignment]  # see flag.py

    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not previous:
            # Swapped before anything can set it: the body arrives in later callbacks. (An
            # upgrade makes no cycle: a previous one may still be waiting on its own event.)
            cycle.message_event = Flag()  # type: ignore[assignment]  # see flag.py
            # The request's task is created but has not run yet, so it sees the key from the start.
            offer_body_extension(cycle)

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        super().connection_lost(exc)
        if cycle is not None:
            _run_callback(cycle)
        ahead = self.response_ahead()
        if ahead is not None:
            # uvicorn tells only the last request's cycle; a stream or a parked poll with a
            # request pipelined behind it would otherwise never hear that its client has gone.
            ahead.disconnected = True
            ahead.message_event.set()
            _run_callback(ahead)

    def handle_websocket_upgrade(self) -> None:
        cycle = self.cycle
        if (cycle is not None and not cycle.response_complete) or self.response_ahead() is not None:
            # An upgrade pipelined behind a response still being written (a parked long poll,
            # a stream): uvicorn would hand the socket to the WebSocket at once, the response
            # would be written into its frames, and this protocol, never told the socket has
            # gone, would keep its deadlines and sweeps. A client that cannot wait is closed,
            # as one sending a request that cannot be parsed is.
            self.logger.warning("WebSocket upgrade pipelined behind an unfinished response.")
            self.transport.close()
            return
        super().handle_websocket_upgrade()
        socket = self.transport.get_protocol()
        connection = getattr(socket, "conn", None)
        if getattr(connection, "handshake_exc", None) is not None and not getattr(
            socket, "handshake_initiated", True
        ):
            # websockets could not parse the request (a body, over 128 headers): uvicorn would
            # neither answer nor close it, and it is in no deadline's queue any more.
            self.transport.write(UNPARSED_UPGRADE)
            self.transport.close()

    def pause_writing(self) -> None:
        super().pause_writing()
        _regate(self.cycle)
        _regate(self.response_ahead())

    def resume_writing(self) -> None:
        super().resume_writing()
        _regate(self.cycle)
        _regate(self.response_ahead())

    def response_ahead(self) -> RequestResponseCycle | None:
        """The response still being written ahead of the protocol's `cycle` (see AHEAD)."""
        ahead: RequestResponseCycle | None = getattr(self.flow, AHEAD, None)
        if ahead is None or ahead is self.cycle or ahead.response_complete:
            return None
        return ahead


class Pipeline(list[Any]):
    """The part of a deque uvicorn's pipeline uses: `appendleft` and `pop`."""

    __slots__ = ()

    def appendleft(self, item: Any) -> None:
        self.insert(0, item)


def set_flag() -> Flag:
    flag = Flag()
    flag.set()
    return flag


def offer_body_extension(cycle: RequestResponseCycle) -> None:
    """Put `fourcast.body` in the request's scope: its functions need only uvicorn's cycle, and
    the protocol's methods above (pause, resume, connection lost) that keep them told."""
    cycle.scope.setdefault("extensions", {})[EXTENSION] = {
        "write": partial(write_chunk, cycle),
        "on_disconnect": partial(on_disconnect, cycle),
        "fan_out": partial(gated, cycle),
    }


def write_chunk(cycle: RequestResponseCycle, body: bytes) -> bool:
    return write_framed(cycle, b"%x\r\n%b\r\n" % (len(body), body))


def write_framed(cycle: RequestResponseCycle, chunks: bytes) -> bool:
    """`write` for bytes already framed as HTTP/1.1 chunks."""
    if (
        not cycle.response_started
        or cycle.response_complete
        or not cycle.chunked_encoding
        or cycle.disconnected
        or cycle.flow.write_paused
        or cycle.transport.is_closing()
    ):
        return False
    cycle.transport.write(chunks)
    return True


class GatedCycle(RequestResponseCycle):
    """uvicorn's cycle, once an SSE stream asks for the fan-out's gate (`gated`): the gate is
    open exactly while `write` would write, but for the transport closing, which the fan-out
    asks the transport itself."""

    response_started = GatedFlag()
    chunked_encoding = GatedFlag()
    response_complete = GatedFlag()
    disconnected = GatedFlag()

    def regate(self) -> None:
        _regate(self)


GATED = ("response_started", "chunked_encoding", "response_complete", "disconnected")


def gated(cycle: RequestResponseCycle, gate: Gated) -> asyncio.Transport:
    """The extension's `fan_out`, once per response: `gate` is told at once, and at every
    change, whether `write` would write (but for the transport closing, which the fan-out asks
    the transport itself), and the transport is returned, for bytes already framed as chunks.
    So a fan-out reads one attribute per stream instead of calling `write`."""
    if type(cycle) is GatedCycle:
        raise RuntimeError("fan_out is given one gate per response")
    state = cycle.__dict__
    for name in GATED:
        state["_" + name] = state.pop(name)
    cycle.__class__ = GatedCycle
    state["fourcast_gate"] = gate
    setattr(cycle.flow, AHEAD, cycle)
    _regate(cycle)
    return cycle.transport


def _regate(cycle: Any) -> None:
    # A quick-lane request (QuickRequest, with slots) has no dict, and never a gate.
    state = getattr(cycle, "__dict__", None)
    gate = None if state is None else state.get("fourcast_gate")
    if gate is not None:
        gate.set_gate(
            bool(
                cycle.response_started
                and cycle.chunked_encoding
                and not cycle.response_complete
                and not cycle.disconnected
                and not cycle.flow.write_paused
            )
        )


def on_disconnect(cycle: RequestResponseCycle, callback: Callable[[], None]) -> None:
    """Run `callback` once, when the connection of this request is lost (now, if it is)."""
    setattr(cycle, _CALLBACK, callback)
    if cycle.disconnected or cycle.transport.is_closing():
        _run_callback(cycle)


def _run_callback(cycle: RequestResponseCycle) -> None:
    callback = getattr(cycle, _CALLBACK, None)
    if callback is None:
        return
    setattr(cycle, _CALLBACK, None)
    try:
        callback()
    except Exception:  # the protocol's connection_lost must run to its end regardless
        log.exception("on_disconnect callback failed")


__all__ = [
    "EXTENSION",
    "FramesHttpToolsProtocol",
    "offer_body_extension",
    "on_disconnect",
    "write_chunk",
    "write_framed",
]
