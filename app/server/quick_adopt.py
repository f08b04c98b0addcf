"""Plain `uvicorn app.main:app`: a connection of uvicorn's stock httptools protocol becomes one of
fourcast's, with the quick lane (app/server/quick.py), at its first request the app sees.

uvicorn builds every HTTP connection with the protocol class its command line names, so under
plain uvicorn every poll would cost an ASGI scope, a task and uvicorn's request cycle. The
stock class and the quick lane's share their layout, so the app switches the connection's class
while its first request is on the ASGI path (and gives it a new parser, which httptools binds
to the class's callbacks); from the next request on, the connection is served as under
`python -m app`, with the same head and idle deadlines. The request in flight finishes on the
stock path's cycle, given the `fourcast.body` extension (app/server/http.py), so an SSE stream
it opens is written to as under `python -m app`. The switch happens only where it is exact: the
stock class itself, an unwrapped `send`, no `--limit-concurrency`, the socket open and not
paused, the request whole and the last the parser has begun, the connection kept alive, the
lane started, and every internal internals.py checks present.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .http import offer_body_extension, on_disconnect, set_flag
from .internals import holds as internals_hold
from .quick import QuickLaneProtocol
from .server_parts import find_quick_lane, proxy_trusted, server_parts


class AdoptedHttpToolsProtocol(QuickLaneProtocol):
    """uvicorn's stock protocol, once the app has adopted it (`adopt_connection`)."""


def adopt_connection(send: Any) -> bool:
    """Switch the connection of this HTTP request (whose ASGI `send` is uvicorn's own) to the
    quick lane's protocol; True if it was switched."""
    cycle = getattr(send, "__self__", None)
    protocol = getattr(getattr(cycle, "on_response", None), "__self__", None)
    if (
        type(protocol) is not HttpToolsProtocol
        or protocol.limit_concurrency is not None
        or protocol.flow.write_paused  # a drain may be waiting on the flow's event
        or protocol.transport.is_closing()
        or not internals_hold()
    ):
        return False
    if (
        protocol.cycle is not cycle
        or getattr(cycle, "more_body", True)  # its body is still arriving
        or protocol.scope is not getattr(cycle, "scope", None)  # a next request has begun
        # The connection ends with this response (HTTP/1.0, `Connection: close`, shutting
        # down): uvicorn's parser ignores whatever the client sends next; a new one would not.
        or not getattr(cycle, "keep_alive", False)
    ):
        return False  # the parser is replaced only between two messages it will read
    lane = find_quick_lane(protocol.app)
    if lane is None:
        return False
    # What may fail comes first: the class is switched only once all of it is in hand.
    idle, deadlines = server_parts(protocol)
    trusts = proxy_trusted(protocol.app, protocol.client)
    protocol.__class__ = AdoptedHttpToolsProtocol
    # httptools binds the protocol's callbacks when the parser is made: a new one (between two
    # messages, so nothing is lost) calls the quick lane's, set up as uvicorn sets up its own.
    protocol.parser = httptools.HttpRequestParser(protocol)
    with contextlib.suppress(AttributeError):  # httptools < 0.6.3
        protocol.parser.set_dangerous_leniencies(lenient_data_after_close=True)
    adopted: Any = protocol
    adopted.quick_lane = lane
    adopted.idle_connections = idle
    adopted.deadlines = deadlines
    adopted.trusts_forwarding = trusts
    adopted.head_bytes = -1
    # uvloop keeps the protocol's `data_received` bound method from `set_protocol`: set again,
    # the transport calls the new class's (which bounds a head's bytes). A transport that
    # cannot be told (a test's) has nothing cached.
    with contextlib.suppress(NotImplementedError):
        protocol.transport.set_protocol(protocol)
    # What FramesHttpToolsProtocol.connection_made sets up (nothing waits on it: not paused).
    protocol.flow._is_writable_event = set_flag()  # type: ignore[assignment]
    # The request in flight is the app's still (it has not answered): an SSE stream opened by
    # it gets `fourcast.body` too, its direct writes and gate kept by the new class's methods.
    offer_body_extension(cycle)
    return True


def disconnect_hook(receive: Any) -> Callable[[Callable[[], None]], None] | None:
    """For an ASGI request on a connection served by fourcast's HTTP protocol (its own, or
    uvicorn's adopted by now), how to be called when the client goes (`on_disconnect` of
    app/server/http.py, without a task parked in `receive`); None on any other."""
    cycle: Any = getattr(receive, "__self__", None)
    protocol = getattr(getattr(cycle, "on_response", None), "__self__", None)
    if not isinstance(protocol, QuickLaneProtocol):
        return None
    return partial(on_disconnect, cycle)
