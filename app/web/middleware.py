"""ASGI middleware: the request-body cap and the security headers every response carries."""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .checks import BODY_METHODS
from .errors import error_response

DISCARD_BYTES = 8 * 1024 * 1024
DISCARD_SECONDS = 10.0

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
# FastAPI's interactive API docs load Swagger UI from its CDN; only those two pages allow it.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "object-src 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc"})
SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
"""On every response; HTML pages also get a CSP and X-Frame-Options."""


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies over the limit with 413, however the app is served.

    The client is still sending when the limit is seen; closing then would reset the connection
    and lose the 413 with it. So the rest of the body is read and dropped first (up to
    `discard_bytes` and DISCARD_SECONDS), and the connection stays open for the next request;
    only past that bound does the 413 close the connection."""

    def __init__(self, app: ASGIApp, max_bytes: int, discard_bytes: int = DISCARD_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.discard_bytes = discard_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    # A client waiting for `100 Continue` has sent nothing yet: answer at once.
                    drained = (
                        declared <= self.discard_bytes
                        and not _expects_continue(scope["headers"])
                        and await self._discard_rest(receive, declared)
                    )
                    await self._refuse(scope, receive, send, drained)
                    return
        received = 0
        started = False
        complete = False

        async def counting_receive() -> Message:
            nonlocal received, complete
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body")
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                drained = complete or await self._discard_rest(
                    receive, self.discard_bytes - received
                )
                await self._refuse(scope, receive, send, drained)
        except ClientDisconnect:
            # Gone before its body was in (or closed for being too slow): nobody to answer, and
            # not a server error worth a traceback per attempt.
            if started:
                raise

    async def _discard_rest(self, receive: Receive, budget: int) -> bool:
        """Read what the client is still sending, within the bound: True once all of it is."""
        try:
            async with asyncio.timeout(DISCARD_SECONDS):
                while budget >= 0:
                    message = await receive()
                    if message["type"] != "http.request":
                        return False
                    if not message.get("more_body"):
                        return True
                    budget -= len(message.get("body", b""))
        except TimeoutError:
            pass
        return False

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, drained: bool) -> None:
        response = error_response(
            413, "body_too_large", f"request body is over {self.max_bytes} bytes"
        )
        if not drained:
            response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _expects_continue(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(n == b"expect" and v.lower() == b"100-continue" for n, v in headers)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = (DOCS_CSP if scope["path"] in DOCS_PATHS else PAGE_CSP).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += SECURITY_HEADERS
                if any(k == b"content-type" and v.startswith(b"text/html") for k, v in headers):
                    headers.append((b"content-security-policy", csp))
                    headers.append((b"x-frame-options", b"DENY"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
