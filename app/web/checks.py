"""What a request must meet besides who it is from: a browser request from our own pages
(Origin; CSRF and cross-site WebSocket hijacking) and a JSON body declared so."""

from __future__ import annotations

from fastapi import Request
from starlette.requests import HTTPConnection

from ..errors import Forbidden, UnsupportedMediaType
from ..settings import Settings

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def own_origin(conn: HTTPConnection) -> str:
    scheme = {"ws": "http", "wss": "https"}.get(conn.url.scheme, conn.url.scheme)
    return f"{scheme}://{conn.headers.get('host', '')}"


def check_origin(conn: HTTPConnection, settings: Settings) -> None:
    """Refuse a browser request from a foreign page (CSRF and cross-site WebSocket hijacking)."""
    origin = conn.headers.get("origin")
    if origin is None:
        return
    allowed, public = settings.allowed_origins, settings.public_origin
    origin = origin.rstrip("/")
    if origin in allowed or origin == public or (not allowed and origin == own_origin(conn)):
        return
    raise Forbidden("origin not allowed", code="bad_origin")


def check_same_site(request: Request, settings: Settings) -> None:
    """A cookie-authenticated unsafe request must say it comes from our own pages: an allowed
    `Origin`, or (a browser that sends none) `Sec-Fetch-Site: same-origin`."""
    if request.headers.get("origin") is None:
        if request.headers.get("sec-fetch-site") == "same-origin":
            return
        raise Forbidden(
            "a request authenticated by cookie needs an Origin header", code="bad_origin"
        )
    check_origin(request, settings)


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
