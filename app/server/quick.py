"""The httptools protocol with a quick lane: GET requests the app answers from the event loop.

uvicorn serves every request by building an ASGI scope, a request-response cycle and a task, then
passing messages through the app's middleware. For a poll, that machinery costs far more than
parsing the request and writing the answer (see docs/performance.md). So the app may offer a
*quick lane*: a callable found as `app.state.quick_lane`, given each GET (no body, no upgrade)
before any of that is built. It returns False to let the request take the ordinary
ASGI path (a request it does not serve), or True and then calls
`QuickRequest.respond` once, from any callback. Under another server the lane is simply unused.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from .http import FramesHttpToolsProtocol

if TYPE_CHECKING:
    from uvicorn._types import WWWScope

QuickLane = Callable[["QuickRequest"], bool]

BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding"})
"""The lane takes only requests without a body: nothing is left to read once it has one."""

access_log = logging.getLogger("uvicorn.access")


_heads: dict[tuple[int, bytes], bytes] = {}
_heads_for: list[object] = [None]


def _head(defaults: list[tuple[bytes, bytes]], status: int, headers: bytes) -> bytes:
    """Status line, uvicorn's default headers and the app's, built once per second: uvicorn
    replaces its default-header list (the date) every second, and that list is the cache key."""
    if _heads_for[0] is not defaults:
        _heads.clear()
        _heads_for[0] = defaults
    head = _heads.get((status, headers))
    if head is None:
        parts = [STATUS_LINE[status]]
        for name, value in defaults:
            parts += (name, b": ", value, b"\r\n")
        parts.append(headers)
        head = _heads[(status, headers)] = b"".join(parts)
    return head


class QuickRequest:
    """One GET in the quick lane. While open it stands in for uvicorn's request-response cycle
    (the protocol reads `response_complete`, `disconnected`, `keep_alive`, `message_event`), so
    uvicorn's own pipelining, disconnect and shutdown handling keep working unchanged."""

    __slots__ = (
        "body",
        "disconnected",
        "headers",
        "http_version",
        "keep_alive",
        "more_body",
        "on_disconnect",
        "path",
        "protocol",
        "query",
        "response_complete",
    )

    def __init__(
        self,
        protocol: QuickHttpToolsProtocol,
        path: str,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
    ) -> None:
        self.protocol = protocol
        self.path = path
        self.query = query
        self.headers = headers
        """Lower-cased names, as the client sent them."""
        self.keep_alive = keep_alive
        self.http_version = "1.1"
        self.response_complete = False
        self.disconnected = False
        self.more_body = True
        self.body = b""
        self.on_disconnect: Callable[[], None] | None = None
        """Called once if the client goes away before the response is written."""

    @property
    def message_event(self) -> QuickRequest:
        return self  # uvicorn calls `cycle.message_event.set()` on news about the request

    def set(self) -> None:
        if self.disconnected and not self.response_complete and self.on_disconnect is not None:
            callback, self.on_disconnect = self.on_disconnect, None
            callback()

    def respond(self, status: int, headers: bytes, body: bytes) -> None:
        """Write the whole response: `headers` are complete `name: value\\r\\n` lines; the date,
        server, length and connection headers are added here, as uvicorn would."""
        if self.response_complete:
            return
        self.response_complete = True
        self.on_disconnect = None
        protocol = self.protocol
        if self.disconnected or protocol.transport.is_closing():
            return
        head = _head(protocol.server_state.default_headers, status, headers)
        close = b"" if self.keep_alive else b"connection: close\r\n"
        protocol.transport.write(
            b"%scontent-length: %d\r\n%s\r\n%s" % (head, len(body), close, body)
        )
        if protocol.access_log:
            self._log_access(status)
        if not self.keep_alive:
            protocol.transport.close()
        protocol.on_response_complete()

    def _log_access(self, status: int) -> None:
        # The line uvicorn would write, so log processing and redaction see no difference.
        scope: dict[str, Any] = {"client": self.protocol.client, "root_path": "", "path": self.path}
        scope["query_string"] = self.query
        access_log.info(
            '%s - "%s %s HTTP/%s" %d',
            get_client_addr(cast("WWWScope", scope)),
            "GET",
            get_path_with_query_string(cast("WWWScope", scope)),
            self.http_version,
            status,
        )


class IdleConnections:
    """Keep-alive connections waiting for their next request, oldest first, closed by one sweep
    a second once idle for longer than uvicorn's keep-alive timeout, where uvicorn arms and
    cancels a timer per response."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._idle: dict[QuickHttpToolsProtocol, float] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def add(self, protocol: QuickHttpToolsProtocol) -> None:
        loop = protocol.loop
        self._idle.pop(protocol, None)
        self._idle[protocol] = loop.time()
        if self._sweeper is None:
            self._sweeper = loop.call_later(1.0, self._sweep, loop)

    def discard(self, protocol: QuickHttpToolsProtocol) -> None:
        self._idle.pop(protocol, None)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweeper = None
        horizon = loop.time() - self.timeout
        idle = self._idle
        while idle:
            protocol, since = next(iter(idle.items()))
            if since > horizon:
                break
            del idle[protocol]
            protocol.timeout_keep_alive_handler()
        if idle:
            self._sweeper = loop.call_later(1.0, self._sweep, loop)


_idle_by_server: weakref.WeakKeyDictionary[Any, IdleConnections] = weakref.WeakKeyDictionary()


class QuickHttpToolsProtocol(FramesHttpToolsProtocol):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        idle = _idle_by_server.get(self.server_state)
        if idle is None:
            idle = _idle_by_server[self.server_state] = IdleConnections(self.timeout_keep_alive)
        self.idle_connections = idle
        # Looked up per connection: the lane appears once the app's lifespan has started.
        self.quick_lane = find_quick_lane(self.app) if self.limit_concurrency is None else None

    def on_response_complete(self) -> None:
        # uvicorn's, with the keep-alive timer replaced by IdleConnections.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self.idle_connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.idle_connections.discard(self)

    def _unset_keepalive_if_required(self) -> None:
        # Runs on every read: uvicorn's timer is never armed here (see on_response_complete).
        if self.timeout_keep_alive_task is not None:
            super()._unset_keepalive_if_required()
        self.idle_connections.discard(self)

    def on_message_begin(self) -> None:
        # uvicorn builds the request's ASGI scope here; a request the lane answers never needs
        # it, so it is built in on_headers_complete, only for the ASGI path.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        # A request has begun: the connection is no longer idle, even when this one arrived in
        # the same read as a request the lane has just answered (which marked it idle).
        self.idle_connections.discard(self)

    def _build_scope(self) -> None:
        """What uvicorn's on_message_begin builds (uvicorn 0.3x-0.5x)."""
        self.scope = {  # type: ignore[typeddict-item]
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,  # type: ignore[typeddict-item]
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
        }

    def on_headers_complete(self) -> None:
        lane = self.quick_lane
        if (
            lane is not None
            and (self.cycle is None or self.cycle.response_complete)
            # A peer not reading its answers: later requests take the ASGI path, which pauses
            # reading and waits for the socket, so pipelined polls cannot pile up in memory.
            and not self.flow.write_paused
            and self.parser.get_method() == b"GET"
            and not self.parser.should_upgrade()
            and not _has_body(self.headers)
        ):
            parsed = httptools.parse_url(self.url)
            raw_path: bytes = parsed.path
            path = raw_path.decode("ascii")
            if "%" in path:
                path = urllib.parse.unquote(path)
            keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
            request = QuickRequest(self, path, parsed.query or b"", self.headers, keep_alive)
            request.http_version = self.parser.get_http_version()
            previous, self.cycle = self.cycle, request  # type: ignore[assignment]
            if lane(request):
                return
            self.cycle = previous
        self._build_scope()
        super().on_headers_complete()


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    # A loop, not any() over a generator: this runs for every request, and it is faster.
    for name, _ in headers:  # noqa: SIM110
        if name in BODY_HEADERS:
            return True
    return False


def find_quick_lane(app: Any) -> QuickLane | None:
    """The app's `state.quick_lane`, looking through the wrappers uvicorn may have added."""
    for _ in range(8):
        state = getattr(app, "state", None)
        lane: QuickLane | None = getattr(state, "quick_lane", None)
        if lane is not None:
            return lane
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


__all__ = ["QuickHttpToolsProtocol", "QuickLane", "QuickRequest", "find_quick_lane"]
