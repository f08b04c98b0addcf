"""Every error leaves as `{"error": {"code", "message"}}` with the contract's status.

A server-side failure (500, 503) says no more than a generic reason and a request id, also sent
as `X-Request-Id`; the details (a storage error's text can hold SQL and other people's data) are
logged under that id, so an operator finds them from what the client reports.
"""

from __future__ import annotations

import logging
import math
import secrets

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount

from ..bus import BusUnavailable
from ..errors import (
    BadParameter,
    Forbidden,
    FourcastError,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from ..store.db import DATABASE_ERRORS, database_unavailable

log = logging.getLogger(__name__)

STATUS: dict[type[FourcastError], int] = {
    BadParameter: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    UnsupportedMediaType: 415,
    InvalidInput: 422,
    RateLimited: 429,
    Unavailable: 503,
}

DATABASE_RETRY_AFTER = 2
"""Seconds a client is told to wait when the database is away (as for the event log)."""

HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def status_for(exc: FourcastError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def retry_headers(exc: FourcastError) -> dict[str, str] | None:
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is None:
        return None
    return {"Retry-After": str(max(1, math.ceil(retry_after)))}


def server_error_body(code: str, message: str) -> tuple[bytes, str]:
    """The body of a 5xx, naming a fresh request id: (body, id)."""
    request_id = secrets.token_hex(8)
    body = orjson.dumps({"error": {"code": code, "message": message, "request_id": request_id}})
    return body, request_id


def server_error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> tuple[Response, str]:
    """A 5xx with a fresh request id in the body and in `X-Request-Id`: (response, id)."""
    body, request_id = server_error_body(code, message)
    headers = {**(headers or {}), "X-Request-Id": request_id}
    response = Response(body, status_code=status, media_type="application/json", headers=headers)
    return response, request_id


def response_for(exc: FourcastError) -> Response:
    status = status_for(exc)
    if status >= 500:
        response, request_id = server_error_response(
            status, exc.code, exc.message, retry_headers(exc)
        )
        log.info("%d %s: %s [request %s]", status, exc.code, exc.message, request_id)
        return response
    return error_response(status, exc.code, exc.message, retry_headers(exc))


def bus_unavailable_response(exc: BusUnavailable) -> Response:
    response, request_id = server_error_response(
        503, "unavailable", "event log unavailable", {"Retry-After": "2"}
    )
    log.warning("503 event log unavailable: %s [request %s]", exc, request_id)
    return response


def install(app: FastAPI) -> None:
    @app.exception_handler(FourcastError)
    async def _domain(request: Request, exc: FourcastError) -> Response:
        return response_for(exc)

    @app.exception_handler(BusUnavailable)
    async def _bus(request: Request, exc: BusUnavailable) -> Response:
        return bus_unavailable_response(exc)

    async def _database(request: Request, exc: Exception) -> Response:
        # Handled here rather than by the catch-all below, which Starlette re-raises to the
        # server after answering (a traceback and a closed connection for each request).
        if request.scope["type"] != "http":
            raise exc
        return unexpected_response(request.method, request.url.path, exc)

    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _database)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
        status = 400 if first.get("loc", ("body",))[0] in ("query", "path", "header") else 422
        return error_response(status, "invalid_request", message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), **allowed(request)}
        return error_response(exc.status_code, code, message, headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return unexpected_response(request.method, request.url.path, exc)


METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed(request: Request) -> dict[str, str]:
    """`Allow` naming every method some route of the path takes: Starlette names only the first
    route's (a channel's `/events` has a GET route and a POST route). Mounts (static files)
    answer for themselves."""
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    methods = [
        method
        for method in METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]
    return {"Allow": ", ".join(methods)} if methods else {}


def unexpected_response(method: str, path: str, exc: BaseException) -> Response:
    """A 500 for a failure nobody expected (the route's, or an entry ahead of the router); a 503
    with Retry-After when it is the database that is away (docs/operations.md: every endpoint
    that needs it says so): people, rooms and notifications reach it directly."""
    if database_unavailable(exc):
        response, request_id = server_error_response(
            503, "unavailable", "database unavailable", {"Retry-After": str(DATABASE_RETRY_AFTER)}
        )
        log.warning(
            "503 database unavailable on %s %s: %s: %s [request %s]",
            method,
            path,
            type(exc).__name__,
            exc,
            request_id,
        )
        return response
    # The client learns nothing of the internals; the log keeps them for operators.
    response, request_id = server_error_response(500, "internal_error", "internal server error")
    log.error(
        "unhandled %s on %s %s [request %s]",
        type(exc).__name__,
        method,
        path,
        request_id,
        exc_info=exc,
    )
    return response
