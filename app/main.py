"""The ASGI application: `uvicorn app.main:app`, or `create_app(settings)` for tests and embedding."""

from __future__ import annotations

import inspect
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from .lifecycle import lifespan
from .settings import Settings, load_settings
from .web import errors, pages
from .web.api import (
    bench,
    channels,
    health,
    metrics,
    notifications,
    presence,
    rooms,
    session,
)
from .web.fastlane import FastLane, openapi_with_stream
from .web.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware

ROOT = Path(__file__).resolve().parent.parent


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    app = FastAPI(
        **_without_native_telemetry(),
        title="fourcast",
        summary="Real-time events over short polling, long polling, SSE and WebSocket",
        version="0.1.0",
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
    ):
        app.include_router(module.router)
    app.include_router(pages.router)
    static = ROOT / "static"
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(FastLane)  # outermost of ours: see app/web/fastlane.py
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
