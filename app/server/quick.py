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

import logging
import urllib.parse
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..features.presence_polls import let_go
from .closing import shut_down
from .deadlines import Deadlines
from .http import AHEAD, FramesHttpToolsProtocol
from .quick_request import QuickRequest
from .request_head import BODY_HEADERS, FORWARDED, has_any, queued
from .server_parts import QuickLane, find_quick_lane, proxy_trusted, server_parts
from .sweep import Sweep

log = logging.getLogger(__name__)


class QuickLaneProtocol(FramesHttpToolsProtocol):
    """The quick lane's protocol. No slots of its own, so that uvicorn's stock protocol, whose
    layout it keeps, can become one (app/server/quick_adopt.py)."""

    deadlines: Deadlines
    idle_connections: Sweep[Any]
    quick_lane: QuickLane | None
    head_bytes: int
    """Bytes read while the request head being parsed is not whole, -1 between heads: httptools
    keeps a head's URL and headers in memory, with no bound of its own."""
    known_caller: Any = None
    """What the lane keeps of who this connection's last request was (app/web/polllane.py):
    a keep-alive poller presents the same credential every poll."""
    presence_hold: Any = None
    """The presence `Hold` of this connection's polls (app/features/presence_polls.py): let go
    when the connection closes, and at any request the lane does not answer (a stream, an
    upgrade to a WebSocket, whose socket this protocol is then never told has closed)."""
    trusts_forwarding = False
    """Whether uvicorn's proxy-headers middleware, in front of the app, would take this peer's
    X-Forwarded-For as the client: a request carrying one then takes the ASGI path, through
    the middleware (uvicorn's command line, with or without `--http`; fourcast's own launch
    turns the middleware off)."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.head_bytes = -1
        self.presence_hold = None
        self.idle_connections, self.deadlines = server_parts(self)
        # Looked up per connection: the lane appears once the app's lifespan has started.
        self.quick_lane = find_quick_lane(self.app) if self.limit_concurrency is None else None
        # uvicorn's command line (`--http` naming this class) keeps its proxy-headers middleware
        # in front of the app: a poll it forwards for another client is that client's.
        self.trusts_forwarding = proxy_trusted(self.app, self.client)
        self.deadlines.admit(self)  # may close it at once: the server is at its socket bound

    def on_response_complete(self) -> None:
        # uvicorn's, with the keep-alive timer replaced by one sweep for every connection.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        # Nothing to unset: it left the idle sweep when its request began, and uvicorn's
        # keep-alive timer is never armed here.
        flow = self.flow
        if flow.read_paused:
            flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            if self.presence_hold is not None:
                self._let_go_of_presence()  # queued behind a lane poll: see on_headers_complete
            self._start_asgi_task(cycle, app)
        else:
            self.idle_connections.add(self, self.timeout_keep_alive)
            self.deadlines.idle(self)

    def shutdown(self) -> None:
        shut_down(self)  # what is queued behind the request being answered gets an answer

    def pause_writing(self) -> None:
        super().pause_writing()
        self.deadlines.stalled(self)

    def resume_writing(self) -> None:
        super().resume_writing()
        self.deadlines.flowing(self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.idle_connections.discard(self)
        self.deadlines.gone(self)
        self._let_go_of_presence()

    def _let_go_of_presence(self) -> None:
        try:
            let_go(self)
        except Exception:  # connection_lost must run to its end regardless
            log.exception("releasing a connection's presence failed")

    def data_received(self, data: bytes) -> None:
        # uvicorn's, in one call per read (this runs for every poll): its keep-alive timer's
        # unsetting inline, and a head's bytes counted. The connection stays in the idle sweep
        # until a request begins (on_message_begin): bytes that begin none (the blank lines
        # httptools skips between requests) must not keep an idle connection open for good.
        if self.timeout_keep_alive_task is not None:
            HttpToolsProtocol._unset_keepalive_if_required(self)
        if self.head_bytes >= 0:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self.transport.is_closing():
                return  # closed from a callback (a bound: see Deadlines), nothing to add
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        if self.head_bytes > self.deadlines.max_head_bytes:
            # Still the same head (a new one starts at 0; a whole one is -1): too large.
            self.head_bytes = -1
            self.deadlines.head_too_large(self)

    def _unset_keepalive_if_required(self) -> None:
        # uvicorn's timer is never armed here (see on_response_complete).
        if self.timeout_keep_alive_task is not None:
            super()._unset_keepalive_if_required()
        self.idle_connections.discard(self)

    def on_message_begin(self) -> None:
        # uvicorn builds the request's ASGI scope here; a request the lane answers never needs
        # it, so it is built in on_headers_complete, only for the ASGI path.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.head_bytes = 0  # this read is not counted: the bound is a read more than the setting
        # A request has begun: the connection is no longer idle, even when this one arrived in
        # the same read as a request the lane has just answered (which marked it idle).
        self.idle_connections.discard(self)
        self.deadlines.waiting(self)

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
        self.head_bytes = -1
        self.deadlines.arrived(self)
        lane = self.quick_lane
        if (
            lane is not None
            and (self.cycle is None or self.cycle.response_complete)
            # A peer not reading its answers: later requests take the ASGI path, which pauses
            # reading and waits for the socket, so pipelined polls cannot pile up in memory.
            and not self.flow.write_paused
            and self.parser.get_method() == b"GET"
            and not self.parser.should_upgrade()
            and not has_any(self.headers, BODY_HEADERS)
            and not (self.trusts_forwarding and has_any(self.headers, FORWARDED))
            # An origin-form target, split below as httptools.parse_url splits it (llhttp has
            # checked its bytes); any other form takes the ASGI path, and uvicorn's parse.
            and self.url[:1] == b"/"
        ):
            raw_path, _, query = self.url.partition(b"#")[0].partition(b"?")
            path = raw_path.decode("ascii")
            if "%" in path:
                path = urllib.parse.unquote(path)
            version = self.parser.get_http_version()
            keep_alive = version != "1.0" and self.parser.should_keep_alive()
            request = QuickRequest(self, path, query, self.headers, keep_alive, version)
            previous, self.cycle = self.cycle, request  # type: ignore[assignment]
            if lane(request):
                return
            self.cycle = previous
        if self.presence_hold is not None and (self.cycle is None or self.cycle.response_complete):
            # Not a poll of the lane's: the connection's polls are over. (Queued behind one still
            # parked, it is let go when it starts, in on_response_complete.)
            self._let_go_of_presence()
        if self.pipeline:
            self.deadlines.pipelined(self, len(self.pipeline))
        if has_any(self.headers, BODY_HEADERS) and not self.parser.should_upgrade():
            self.deadlines.body_due(self)
        self._build_scope()
        ahead: Any = self.cycle  # uvicorn types it as its own cycle class
        super().on_headers_complete()
        if (
            ahead is not None
            and ahead is not self.cycle
            and not ahead.response_complete
            and not queued(self.pipeline, ahead)  # the one being answered, not one waiting
        ):
            # A parked long poll or a stream with this request queued behind it: told when the
            # connection is lost (see AHEAD). A stream whose head came in this same read has
            # not run yet to name itself (`gated`), so it is named here.
            setattr(self.flow, AHEAD, ahead)
        if self.flow.read_paused and self.response_ahead() is not None:
            # Queued behind a parked poll or a stream: see app/server/hangups.py.
            self.deadlines.hangups.watch(self)

    def on_message_complete(self) -> None:
        cycle: Any = self.cycle  # uvicorn types it as its own cycle class
        if type(cycle) is QuickRequest:
            # The lane's (or, after an upgrade's head, a past one's, which uvicorn leaves be
            # too): it has no body to wait for and reads no messages, so there is no news.
            return
        self.deadlines.complete(self)
        super().on_message_complete()


class QuickHttpToolsProtocol(QuickLaneProtocol):
    # Our attributes in slots: uvicorn's own fill the instance dict up to the size past which
    # Python stops sharing its keys with other instances, and a dict of its own is five times
    # larger, for every open connection.
    __slots__ = (
        "deadlines",
        "head_bytes",
        "idle_connections",
        "known_caller",
        "presence_hold",
        "quick_lane",
        "trusts_forwarding",
    )


__all__ = ["QuickHttpToolsProtocol", "QuickLane", "QuickRequest", "find_quick_lane"]
