"""Liveness (the process answers) and readiness (the bus and the store are usable)."""

from __future__ import annotations

import asyncio

import orjson
from fastapi import APIRouter, Response

from ..deps import ServicesDep

router = APIRouter(tags=["health"])

CHECK_TIMEOUT = 2.0


@router.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get("/readyz")
async def readyz(services: ServicesDep) -> Response:
    problems: dict[str, str] = {}
    if services.draining:
        problems["server"] = "draining"
    for name, check in services.checks:
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT)
        except TimeoutError:
            problems[name] = "timed out"
        except Exception as exc:
            problems[name] = type(exc).__name__
    if problems:
        body = orjson.dumps({"status": "unavailable", "problems": problems})
        return Response(body, 503, media_type="application/json", headers={"Retry-After": "2"})
    return Response(b'{"status":"ready"}', media_type="application/json")
