"""The ASGI application: `uvicorn app.main:app`, or `create_app(settings)` for tests and embedding."""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Awaitable
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from . import __version__
from .lifecycle import lifespan
from .paths import static_dir
from .settings import Settings, load_settings
from .startfailure import quiet_told_failures
from .web import errors, pages
from .web.api import (
    asyncapi,
    bench,
    channels,
    health,
    lanes,
    metrics,
    notifications,
    presence,
    rooms,
    session,
    testing,
)
from .web.fastlane import FastLane, openapi_with_stream
from .web.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware
from .web.publishentry import publish_entry

DESCRIPTION = (
    "The HTTP API. The WebSocket `/ws` (every op, server message and close code) and the SSE "
    f"stream are described by the AsyncAPI 3.0 document at [{asyncapi.PATH}]({asyncapi.PATH})."
)


class Fourcast(FastAPI):
    """FastAPI with the fast lane (app/web/fastlane.py) in front of Starlette's own middleware
    (its error handler and FastAPI's body limit): a WebSocket or SSE stream holds none of their
    frames for its whole life, and polls and publishes pass none of their layers. Starlette
    builds the stack on the first request, once every middleware is added."""

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:  # type: ignore[override]
        """What FastAPI's and Starlette's `__call__` do for a request (the root path, the app
        in the scope, the stack built once), as a plain function handing back the fast lane's
        coroutine: neither of their frames is held for a WebSocket's or a stream's whole life,
        nor made per request. Lifespan (and FastAPI's telemetry hook in it) stays theirs."""
        if scope["type"] == "lifespan":
            return super().__call__(scope, receive, quiet_told_failures(send))
        if self.root_path:
            scope["root_path"] = self.root_path
        scope["app"] = self
        stack = self.middleware_stack
        if stack is None:
            stack = self.middleware_stack = self.build_middleware_stack()
        return stack(scope, receive, send)

    if sys.version_info >= (3, 12):
        __call__ = inspect.markcoroutinefunction(__call__)
    else:
        # What `inspect.markcoroutinefunction` does from 3.12 (and asgiref's before it): ASGI
        # servers take an app whose `__call__` is no coroutine function for ASGI 2.
        __call__._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]

    def build_middleware_stack(self) -> ASGIApp:
        settings: Settings = self.state.settings
        publishing = publish_entry(settings.max_body_bytes, settings.body_discard_bytes)
        return FastLane(super().build_middleware_stack(), publishing)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    app = Fourcast(
        **_without_native_telemetry(),
        title="fourcast",
        summary="Real-time events over short polling, long polling, SSE and WebSocket",
        description=DESCRIPTION,
        version=__version__,
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    for module in (
        health,
        metrics,
        bench,
        session,
        channels,
        presence,
        rooms,
        notifications,
        asyncapi,
        lanes,
    ):
        app.include_router(module.router)
    app.include_router(pages.router)
    if settings.testing_echo:
        app.include_router(testing.router)
    static = static_dir()
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        discard_bytes=settings.body_discard_bytes,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.openapi = partial(openapi_with_stream, app)  # type: ignore[method-assign]
    return app


def _without_native_telemetry() -> dict[str, Any]:
    """Newer FastAPI releases trace every request with OpenTelemetry by default, a measurable
    cost per poll and per stream chunk; fourcast exports Prometheus metrics (`/metrics`) instead."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    off = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    return {"telemetry": off}


app = create_app()
