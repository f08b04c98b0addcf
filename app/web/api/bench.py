"""`GET /api/bench/latest`: the newest benchmark run (`make bench` writes it), for /compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Response

from ..deps import ServicesDep
from ..responses import json_response

router = APIRouter(tags=["bench"])

LATEST = Path(__file__).resolve().parents[3] / "bench" / "results" / "latest.json"
KEYS = ("created", "suite", "duration_s", "targets", "machine", "versions")


def _rows(rows: Any) -> list[dict[str, Any]]:
    """Every measured row, fourcast's and the peers' (`server`, absent for fourcast's own)."""
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


@router.get("/api/bench/latest")
async def bench_latest(services: ServicesDep) -> Response:
    """Read per request (the file is small and replaced by each run). With no run yet, `results`
    is empty and `available` false, so the page says so without an error."""
    path = services.settings.bench_results or LATEST
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        data = None
    if not isinstance(data, dict):
        return json_response({"available": False, "results": []})
    body = {"available": True, **{key: data.get(key) for key in KEYS}}
    body["results"] = _rows(data.get("results"))
    return json_response(body)
