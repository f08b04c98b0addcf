"""Request-scoped helpers: the app's services, the caller's identity, the client's address."""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from ..errors import Forbidden, Unauthorized
from ..identity.principal import ANONYMOUS, Principal
from ..identity.tokens import TokenService
from ..services import Services

# Dependencies are `async def` on purpose: FastAPI runs plain `def` dependencies in a thread pool,
# a thread hop per request for what is a few dictionary lookups.

SESSION_COOKIE = "fourcast_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def services_of(conn: HTTPConnection) -> Services:
    services: Services = conn.app.state.services
    return services


async def get_services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


def client_ip(conn: HTTPConnection, trusted_proxies: tuple[str, ...]) -> str:
    """The peer address, or the X-Forwarded-For client when the peer is a configured proxy."""
    peer = conn.client.host if conn.client else "unknown"
    if trusted_proxies and _is_trusted(peer, trusted_proxies):
        forwarded = conn.headers.get("x-forwarded-for", "")
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
    allowed = services_of(conn).settings.allowed_origins
    if origin.rstrip("/") in allowed or (not allowed and origin == own_origin(conn)):
        return
    raise Forbidden("origin not allowed", code="bad_origin")


def bearer_token(header: str) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return token.strip()


def authenticate(conn: HTTPConnection, *, token: str | None = None) -> Principal:
    """Who is calling: a bearer token (header or given), a single-use ticket, or the session cookie."""
    return identify(
        services_of(conn).tokens,
        authorization=conn.headers.get("authorization") if token is None else None,
        token=token,
        ticket=conn.query_params.get("ticket"),
        cookie=conn.cookies.get(SESSION_COOKIE),
    )


def identify(
    tokens: TokenService,
    *,
    authorization: str | None,
    ticket: str | None,
    cookie: str | None,
    token: str | None = None,
) -> Principal:
    """`authenticate` from the request's parts, for callers without a Starlette request (the
    quick lane). An explicit credential that is wrong is an error; a stale cookie just means
    anonymous."""
    if token is None and authorization is not None:
        token = bearer_token(authorization)
    if token is not None:
        return tokens.authenticate_bearer(token)
    if ticket is not None:
        return tokens.redeem_ticket(ticket)
    if cookie:
        try:
            principal = tokens.authenticate_bearer(cookie, via_cookie=True)
        except Unauthorized:
            return ANONYMOUS
        if principal.is_user:
            return principal
    return ANONYMOUS


async def get_principal(request: Request) -> Principal:
    principal = authenticate(request)
    if principal.via_cookie and request.method in UNSAFE_METHODS:
        check_origin(request)
    return principal


async def require_user(request: Request) -> Principal:
    principal = await get_principal(request)
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


PrincipalDep = Annotated[Principal, Depends(get_principal)]
UserDep = Annotated[Principal, Depends(require_user)]
ServiceDep = Annotated[Principal, Depends(require_service)]
