"""Polls in the server's quick lane (app/server/quick.py): the poll core (app/web/poll.py)
called straight from the protocol, with no ASGI scope, task or middleware; a waiting long poll
is two callbacks rather than a task. Every poll the route would answer is answered here, with
the same bytes: the same authentication (`deps.identify_now`), core, error bodies and headers.
A poll whose caller cannot be told without awaiting (a ticket to redeem, an application token
whose signing key is not fetched yet) is left to the route, which answers it through the same
core."""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import cookie_parser

from ..errors import FourcastError
from ..features.presence_polls import let_go
from ..identity.principal import ANONYMOUS, Principal
from ..identity.verified import KnownCaller
from .api.channels import channel_in
from .deps import SESSION_COOKIE, NeedsAwait, forwarded_client, identify_now
from .middleware import SECURITY_HEADERS
from .poll import Done, PollAnswer, PollCore, Waiting, error_answer, internal_error

if TYPE_CHECKING:  # the quick lane's server module imports uvicorn internals (see internals.py)
    from ..server.quick import QuickRequest

log = logging.getLogger(__name__)

KNOWN_CALLER_BYTES = 2048
"""The most header bytes a connection keeps to know its caller by (a Cookie header carries
every cookie of the site): past it, each poll is told apart as the first was."""


class PollLane:
    def __init__(self, core: PollCore) -> None:
        self.core = core
        self.tokens = core.services.tokens
        self.trusted_proxies = core.services.settings.trusted_proxies
        self._heads: dict[tuple[tuple[bytes, bytes], ...], bytes] = {}

    def __call__(self, request: QuickRequest) -> bool:
        """True when this GET is a poll, now answered or to be answered (False: the route
        answers it: not a poll, or one that needs awaiting to tell who asks)."""
        channel = channel_in(request.path, "/events")
        if channel is None:
            return False  # not a poll (or not one the route matches: its 404)
        try:
            protocol = request.protocol
            _, answer = self.ask(
                channel,
                request.query,
                request.headers,
                protocol.client,
                partial(self._respond, request),
                protocol,
            )
        except NeedsAwait:
            return False
        if isinstance(answer, Waiting):
            request.on_disconnect = answer.cancel
        else:
            self._respond(request, answer)
        return True

    def ask(
        self,
        channel: str,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
        client: tuple[str, int] | None,
        done: Done,
        connection: Any = None,
    ) -> tuple[Principal | None, PollAnswer | Waiting]:
        """Who asks (None when that is an error) and the core's answer, from the request's raw
        parts; the quick lane and the app's ASGI entry (app/web/fastlane.py) both ask here.
        `connection`: the quick lane's connection, which keeps its `known_caller` and its
        polls' presence `Hold` (released when it closes). Raises
        NeedsAwait when the caller cannot be told without awaiting."""
        try:
            params = query_params(query)
            try:
                principal = self._identify(headers, params.get("ticket"), connection)
            except FourcastError as exc:
                self._let_go(connection)
                return None, error_answer(exc)
            answer = self.core.answer(
                channel,
                params.get("after"),
                params.get("limit"),
                params.get("wait"),
                principal,
                self._client_ip(client, headers),
                done,
                connection,
            )
        except NeedsAwait:
            raise  # the route answers it: the server lets go of the hold, as for any request
        except Exception as exc:
            self._let_go(connection)
            return None, internal_error("answering a poll", exc)
        return principal, answer

    def _identify(
        self, headers: list[tuple[bytes, bytes]], ticket: str | None, connection: Any
    ) -> Principal:
        """`identify_now`, unless the connection's last poll presented the same credential
        bytes and `TokenService.recall` finds them still standing."""
        authorization = cookie = None
        for key, value in headers:
            if key == b"authorization":
                if authorization is None:  # the first, as Starlette's `headers.get` reads it
                    authorization = value
            elif key == b"cookie":
                # Every Cookie header, the later winning, as Starlette's `cookies` reads them.
                cookie = value if cookie is None else cookie + b"; " + value
        tokens = self.tokens
        known: KnownCaller | None = getattr(connection, "known_caller", None)
        if (
            known is not None
            and ticket is None
            and known.authorization == authorization
            and known.cookie == cookie
        ):
            principal = tokens.recall(known)
            if principal is not None:
                return principal
        principal = identify_now(
            tokens,
            authorization=None if authorization is None else authorization.decode("latin-1"),
            ticket=ticket,
            cookie=None if cookie is None else _session_cookie(cookie.decode("latin-1")),
        )
        if (
            connection is not None
            and ticket is None
            and principal is not ANONYMOUS
            and len(authorization or b"") + len(cookie or b"") <= KNOWN_CALLER_BYTES
        ):
            connection.known_caller = tokens.know(authorization, cookie, principal)
        return principal

    def _let_go(self, connection: Any) -> None:
        """A poll that holds nobody (it failed): the connection's presence `Hold` is let go."""
        if connection is not None:
            let_go(connection)

    def _client_ip(self, client: tuple[str, int] | None, headers: list[tuple[bytes, bytes]]) -> str:
        """What `deps.client_ip` says for the same request."""
        peer = client[0] if client else "unknown"
        if not self.trusted_proxies:
            return peer
        forwarded = _header(headers, b"x-forwarded-for")
        return forwarded_client(peer, forwarded, self.trusted_proxies)

    def _respond(self, request: QuickRequest, answer: PollAnswer) -> None:
        head = self._heads.get(answer.headers)
        if head is None:
            lines = [b"%s: %s\r\n" % pair for pair in (*answer.headers, *SECURITY_HEADERS)]
            head = b"".join(lines)
            if answer.status < 500:  # a 5xx names its own request id: not worth keeping
                self._heads[answer.headers] = head
        request.respond(answer.status, head, answer.body)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first header of that name, as Starlette's `headers.get` reads it."""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _session_cookie(header: str) -> str | None:
    """The session cookie of a Cookie header, as Starlette's `cookie_parser` reads it. A header
    carrying that one cookie unquoted (what a signed-in poller's browser sends) is split
    directly."""
    if ";" not in header and '"' not in header:
        name, sep, value = header.partition("=")
        if sep and name.strip() == SESSION_COOKIE:
            return value.strip()
    return cookie_parser(header).get(SESSION_COOKIE)


def query_params(query: bytes) -> dict[str, str]:
    """The query's parameters, the last one of a name winning, as in Starlette. Plain
    `name=value` pairs, what every poller sends, are split directly; anything escaped goes
    through the standard parser."""
    if not query:
        return {}
    text = query.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    params = {}
    for pair in text.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            params[name] = value
    return params
