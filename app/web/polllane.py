"""Short and long polls answered in the server's quick lane (app/server/quick.py): no ASGI scope,
task or middleware, and a waiting long poll is two callbacks rather than a task.

It serves exactly what it can serve identically to the ASGI route in app/web/api/channels.py:
anonymous and service (API key) readers, on a backend that reads from memory. Everything else
(a signed-in person, whose poll renews a presence lease; a ticket; any error; Redis) returns
False and takes the ordinary route, which produces the same answer, or the error, as before.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from ..bus import PollResult
from ..bus.events import EventError, now_ms, parse_poll_cursor, validate_channel
from ..errors import FourcastError
from ..identity.policy import check_read
from ..identity.principal import ANONYMOUS, Principal
from ..server.quick import QuickRequest
from ..services import Services
from .api.channels import poll_body
from .deps import SESSION_COOKIE, bearer_token
from .errors import server_error_body

log = logging.getLogger(__name__)

PREFIX = "/api/channels/"
SUFFIX = "/events"
HEADERS = (
    b"content-type: application/json\r\n"
    b"x-content-type-options: nosniff\r\n"
    b"referrer-policy: no-referrer\r\n"
)
"""What the ASGI route's response carries (its media type plus SecurityHeadersMiddleware's)."""
COOKIE = SESSION_COOKIE.encode() + b"="


class PollLane:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.bus = services.bus
        self.metrics = services.metrics
        settings = services.settings
        self.default_limit = settings.poll_default_limit
        self.max_limit = settings.poll_max_limit
        self.max_wait = int(settings.long_poll_max_wait)

    def __call__(self, request: QuickRequest) -> bool:
        path = request.path
        if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
            return False
        channel = path[len(PREFIX) : -len(SUFFIX)]
        principal = self._principal(request)
        if principal is None or principal.is_user:
            return False
        try:
            validate_channel(channel)
            check_read(principal, channel)
        except (EventError, FourcastError):
            return False
        params = self._params(request.query)
        if params is None:
            return False
        after, marker, limit, wait = params
        if not after and principal.is_anonymous:
            return False  # a read from the start spends a budget: the ASGI route keeps those
        if wait and self.services.draining:
            wait = 0
        if marker is None:
            marker = now_ms()
        bus = self.bus
        transport = "longpoll" if wait else "shortpoll"
        if (
            wait
            and after is not None
            and not bus.draining
            and bus.up_to_date(channel, after, marker)
        ):
            return self._park(request, transport, channel, after, marker, limit, wait)
        result = bus.poll_ready(channel, after, marker, limit)
        if result is None:
            return False  # the backend must be awaited
        if after is None or not wait or result.events or result.reset or bus.draining:
            self._answer(request, transport, result)
            return True
        return self._park(request, transport, channel, after, marker, limit, wait)

    def _park(
        self,
        request: QuickRequest,
        transport: str,
        channel: str,
        after: int,
        marker: float,
        limit: int,
        wait: int,
    ) -> bool:
        """Hold the poll, counted against the per-address and process connection caps like any
        held connection; False (the ASGI route answers: 429, 503) when a cap is reached or the
        client's address is a proxy's (only the ASGI route reads `X-Forwarded-For`)."""
        client = request.protocol.client
        if client is None or self.services.settings.trusted_proxies:
            return False
        ip = client[0]
        connections = self.services.connections
        try:
            connections.acquire(None, ip)
        except FourcastError:
            return False
        bus = self.bus

        def answer(result: PollResult | None) -> None:
            connections.release(None, ip)
            self._answer(request, transport, result)

        parked = bus.park_poll(channel, after, marker, limit, wait, answer)

        def gone() -> None:
            connections.release(None, ip)
            bus.cancel_parked(parked)

        request.on_disconnect = gone
        return True

    def _principal(self, request: QuickRequest) -> Principal | None:
        """Who is calling, when it can be told without the ASGI route's help (None: it cannot)."""
        principal = ANONYMOUS
        credentials = 0
        for name, value in request.headers:
            if name == b"authorization":
                credentials += 1
                if credentials > 1:
                    return None  # the ASGI route reads the first one; let it decide
                try:
                    token = bearer_token(value.decode("latin-1"))
                    principal = self.services.tokens.authenticate_bearer(token)
                except FourcastError:
                    return None
            elif name == b"cookie" and COOKIE in value:
                return None
        return principal

    def _params(self, query: bytes) -> tuple[int | None, float | None, int, int] | None:
        """after, marker, limit and wait as the ASGI route reads them (None: let it explain)."""
        params = _query(query)
        if params is None:
            return None
        try:
            limit = int(params.get("limit") or self.default_limit)
            wait = int(params.get("wait") or 0)
            raw = params.get("after")
            after, marker = parse_poll_cursor(raw) if raw else (None, None)
        except (ValueError, EventError):
            return None
        if not (1 <= limit <= self.max_limit and 0 <= wait <= self.max_wait):
            return None
        return after, marker, limit, wait

    def _answer(self, request: QuickRequest, transport: str, result: PollResult | None) -> None:
        if result is None:
            body, request_id = server_error_body("unavailable", "event log unavailable")
            log.warning(
                "503 event log unavailable: a parked poll's read failed [request %s]", request_id
            )
            extra = b"retry-after: 2\r\nx-request-id: " + request_id.encode() + b"\r\n"
            request.respond(503, HEADERS + extra, body)
            return
        metrics = self.metrics
        metrics.answered_poll(transport)
        if result.events:
            metrics.wrote(transport, len(result.events), result.events[-1].ts)
        request.respond(200, HEADERS, poll_body(result))


def _query(query: bytes) -> dict[str, str] | None:
    """The query's parameters, last one winning as in Starlette; None when it holds a ticket
    (only the ASGI route redeems those). Plain `name=value` pairs, what every poller sends,
    are split directly; anything escaped goes through the standard parser."""
    if not query:
        return {}
    if b"%" in query or b"+" in query:
        params = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    else:
        params = {}
        for pair in query.decode("latin-1").split("&"):
            if pair:
                name, _, value = pair.partition("=")
                params[name] = value
    return None if "ticket" in params else params
