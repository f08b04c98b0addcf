"""Request-scoped helpers: the app's services, the caller's identity, the client's address."""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection
from starlette.types import Scope

from ..errors import Forbidden, Unauthorized, UnsupportedMediaType
from ..identity.apptokens import KeysMissing
from ..identity.owntokens import Ticket
from ..identity.principal import ANONYMOUS, Principal
from ..identity.tokens import TokenService
from ..services import Services

# Dependencies are `async def` on purpose: FastAPI runs plain `def` dependencies in a thread pool,
# a thread hop per request for what is a few dictionary lookups.

SESSION_COOKIE = "fourcast_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


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


def own_origin(conn: HTTPConnection) -> str:
    scheme = {"ws": "http", "wss": "https"}.get(conn.url.scheme, conn.url.scheme)
    return f"{scheme}://{conn.headers.get('host', '')}"


def check_origin(conn: HTTPConnection) -> None:
    """Refuse a browser request from a foreign page (CSRF and cross-site WebSocket hijacking)."""
    origin = conn.headers.get("origin")
    if origin is None:
        return
    settings = services_of(conn).settings
    allowed, public = settings.allowed_origins, settings.public_origin
    origin = origin.rstrip("/")
    if origin in allowed or origin == public or (not allowed and origin == own_origin(conn)):
        return
    raise Forbidden("origin not allowed", code="bad_origin")


def check_same_site(request: Request) -> None:
    """A cookie-authenticated unsafe request must say it comes from our own pages: an allowed
    `Origin`, or (a browser that sends none) `Sec-Fetch-Site: same-origin`."""
    if request.headers.get("origin") is None:
        if request.headers.get("sec-fetch-site") == "same-origin":
            return
        raise Forbidden(
            "a request authenticated by cookie needs an Origin header", code="bad_origin"
        )
    check_origin(request)


def require_json(request: Request, *, strict: bool = True) -> None:
    """Request bodies are JSON, declared so: a form or text/plain body (which a foreign page can
    send without a CORS preflight) is refused with 415. Not `strict` (a bearer-authenticated
    caller, which no foreign page can forge), a body without any Content-Type is read as JSON."""
    if request.method not in BODY_METHODS:
        return
    headers = request.headers
    length = headers.get("content-length")
    if (length is None or length.strip() == "0") and "transfer-encoding" not in headers:
        return
    declared = headers.get("content-type")
    if declared is None and not strict:
        return
    if (declared or "").partition(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(
            "request bodies must be JSON with Content-Type: application/json"
        )


async def json_body(request: Request) -> None:
    """A route dependency: runs before FastAPI parses the body, so a non-JSON body is 415."""
    require_json(request, strict=False)


def bearer_token(header: str) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return token.strip()


async def authenticate(
    conn: HTTPConnection, *, token: str | None = None, tickets: bool = False
) -> Principal:
    """Who is calling: a bearer token (header or given), a single-use ticket (`tickets`: only
    where a connection opens), or the session cookie.

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
        ticket=ticket,
        cookie=conn.cookies.get(SESSION_COOKIE),
    )


class NeedsAwait(Exception):
    """`identify_now` cannot tell without awaiting (a ticket to redeem, signing keys to fetch):
    the caller takes the awaited way (the quick lane leaves the request to the ASGI route)."""


async def identify(
    tokens: TokenService,
    *,
    authorization: str | None,
    ticket: str | None,
    cookie: str | None,
    token: str | None = None,
) -> Principal:
    """`authenticate` from the request's parts, for callers without a Starlette request."""
    if token is None and authorization is not None:
        token = bearer_token(authorization)
    if token is not None:
        return await tokens.authenticate(token)
    if ticket is not None:
        return await tokens.redeem_ticket(ticket)
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


async def get_principal(request: Request, *, tickets: bool = False) -> Principal:
    principal = await authenticate(request, tickets=tickets)
    if principal.via_cookie and request.method in UNSAFE_METHODS:
        check_same_site(request)
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


async def get_reader(request: Request) -> tuple[Principal, Ticket | None]:
    """`get_principal` where a ticket may stand for the caller (a read that opens a connection).
    The ticket is checked, not spent: the caller spends it (`TokenService.spend_ticket`) once
    the request is going to be served, not for a 400, a 403 or a HEAD."""
    checked = unspent_ticket(request)
    if checked is None:
        return await get_principal(request, tickets=True), None
    return checked.principal, checked


def unspent_ticket(conn: HTTPConnection, token: str | None = None) -> Ticket | None:
    """The `?ticket=` that stands for the caller, checked, not spent; None when there is none
    or a token is presented (a token wins over a ticket, as in `identify`)."""
    ticket = conn.query_params.get("ticket")
    if ticket is None or token is not None or conn.headers.get("authorization") is not None:
        return None
    return services_of(conn).tokens.read_ticket(ticket)


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
