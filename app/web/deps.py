"""Request-scoped helpers: the app's services, the caller's identity, the client's address
(what a request must meet besides, its origin and its body's type: checks.py)."""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection
from starlette.types import Scope

from ..errors import Forbidden, Unauthorized
from ..identity.apptokens import KeysMissing
from ..identity.owntokens import Ticket
from ..identity.principal import ANONYMOUS, Principal
from ..identity.tokens import TokenService
from ..services import Services
from .checks import UNSAFE_METHODS, check_same_site, require_json

# Dependencies are `async def` on purpose: FastAPI runs plain `def` dependencies in a thread pool,
# a thread hop per request for what is a few dictionary lookups.

SESSION_COOKIE = "fourcast_session"


def services_of(conn: HTTPConnection) -> Services:
    services: Services = conn.app.state.services
    return services


async def get_services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


def client_ip(conn: HTTPConnection, trusted_proxies: tuple[str, ...]) -> str:
    """The peer address, or the X-Forwarded-For client when the peer is a configured proxy."""
    peer = conn.client.host if conn.client else "unknown"
    return forwarded_client(peer, conn.headers.get("x-forwarded-for"), trusted_proxies)


def forwarded_client(peer: str, forwarded: str | None, trusted_proxies: tuple[str, ...]) -> str:
    """`client_ip` from the request's parts (the quick lane has no Starlette request)."""
    if trusted_proxies and forwarded and _is_trusted(peer, trusted_proxies):
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        # Walk back from the nearest hop, skipping our own proxies.
        for hop in reversed(hops):
            if not _is_trusted(hop, trusted_proxies):
                return hop
    return peer


def _is_trusted(address: str, trusted: tuple[str, ...]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    for entry in trusted:
        try:
            if ip in ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def bearer_token(header: str) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return token.strip()


async def authenticate(
    conn: HTTPConnection, *, token: str | None = None, tickets: bool = False
) -> Principal:
    """Who is calling: a bearer token (header or given) or the session cookie. A `?ticket=` is
    refused unless `tickets` (where a connection opens: `get_reader` reads the ticket, and asks
    here only when a token wins over it).

    An explicit credential that is wrong is an error; a stale or revoked cookie means anonymous.
    """
    ticket = conn.query_params.get("ticket")
    if ticket is not None and not tickets:
        # A ticket is handed to a browser to open one stream: it must not also act as its
        # issuer elsewhere (sign people out, publish, send notifications).
        raise Unauthorized(
            "a ticket opens a stream, a WebSocket or a poll, nothing else", code="invalid_ticket"
        )
    return await identify(
        services_of(conn).tokens,
        authorization=conn.headers.get("authorization") if token is None else None,
        token=token,
        cookie=conn.cookies.get(SESSION_COOKIE),
    )


class NeedsAwait(Exception):
    """`identify_now` cannot tell without awaiting (a ticket to redeem, signing keys to fetch):
    the caller takes the awaited way (the quick lane leaves the request to the ASGI route)."""


async def identify(
    tokens: TokenService,
    *,
    authorization: str | None,
    cookie: str | None,
    token: str | None = None,
) -> Principal:
    """`authenticate` from the request's parts, for callers without a Starlette request (a
    ticket is read by `get_reader`, the one place that takes one)."""
    if token is None and authorization is not None:
        token = bearer_token(authorization)
    if token is not None:
        return await tokens.authenticate(token)
    if not cookie:
        return ANONYMOUS
    try:
        principal = await tokens.authenticate(cookie, via_cookie=True)
    except Unauthorized:
        return ANONYMOUS
    return principal if principal.is_user else ANONYMOUS


def identify_now(
    tokens: TokenService, *, authorization: str | None, ticket: str | None, cookie: str | None
) -> Principal:
    """`identify` without awaiting (the quick lane), with the same answers; raises NeedsAwait
    when it cannot tell (a ticket, or an application token whose key is not fetched yet)."""
    token = None if authorization is None else bearer_token(authorization)
    if token is None and ticket is not None:
        raise NeedsAwait
    try:
        if token is not None:
            return tokens.authenticate_now(token)
        if not cookie:
            return ANONYMOUS
        principal = tokens.authenticate_now(cookie, via_cookie=True)
    except KeysMissing:
        raise NeedsAwait from None
    except Unauthorized:
        if token is not None:
            raise
        return ANONYMOUS  # a stale or revoked cookie
    return principal if principal.is_user else ANONYMOUS


async def get_principal(request: Request) -> Principal:
    principal = await authenticate(request)
    if principal.via_cookie and request.method in UNSAFE_METHODS:
        check_same_site(request, services_of(request).settings)
    require_json(request, strict=principal.via_cookie)
    return principal


async def require_user(request: Request) -> Principal:
    principal = await get_principal(request)
    if principal.is_service:
        # Authenticated, as no person: signing in again would not help (403, not 401).
        raise Forbidden("this is a person's action: an API key cannot take it")
    if not principal.is_user:
        raise Unauthorized("sign in first")
    return principal


async def require_service(request: Request) -> Principal:
    principal = await get_principal(request)
    if principal.is_anonymous:
        raise Unauthorized("a service API key is required")
    if not principal.is_service:
        raise Forbidden("only services may do this")
    return principal


async def get_reader(
    conn: HTTPConnection, token: str | None = None
) -> tuple[Principal, Ticket | None]:
    """Who opens a connection (a stream, `/ws`, a poll: its GET has no body to check), where a
    `?ticket=` stands for the caller unless a token is presented (`token`, or an Authorization
    header: the token wins). The ticket is checked, not spent: the caller spends it
    (`TokenService.spend_ticket`) once the request is going to be served, not for a 400, a
    403, a HEAD or a refusal at a cap."""
    ticket = conn.query_params.get("ticket")
    if ticket is None or token is not None or conn.headers.get("authorization") is not None:
        return await authenticate(conn, token=token, tickets=True), None
    checked = services_of(conn).tokens.read_ticket(ticket)
    return checked.principal, checked


PrincipalDep = Annotated[Principal, Depends(get_principal)]
UserDep = Annotated[Principal, Depends(require_user)]
ServiceDep = Annotated[Principal, Depends(require_service)]


def forget_headers(scope: Scope) -> None:
    """A WebSocket or SSE stream reads its request's headers once, when it opens, and an idle
    connection should not hold them all its life: empty them in place (Starlette's `headers`
    shares the scope's list, so its copy goes too)."""
    headers = scope.get("headers")
    if isinstance(headers, list):
        headers.clear()
