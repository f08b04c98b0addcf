"""`GET /api/bench/latest`: the newest benchmark run (`make bench` writes it), for /compare."""

from __future__ import annotations

from pathlib import Path

import orjson
from fastapi import APIRouter, Response

from ..responses import json_response

router = APIRouter(tags=["bench"])

LATEST = Path(__file__).resolve().parents[3] / "bench" / "results" / "latest.json"
KEYS = ("created", "suite", "duration_s", "results", "targets", "machine", "versions")


@router.get("/api/bench/latest")
async def bench_latest() -> Response:
    """Read per request (the file is small and replaced by each run). With no run yet, `results`
    is empty and `available` false, so the page says so without an error."""
    try:
        data = orjson.loads(LATEST.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        data = None
    if not isinstance(data, dict):
        return json_response({"available": False, "results": []})
    body = {"available": True, **{key: data.get(key) for key in KEYS}}
    rows = body.get("results")
    # Rows without a delivery rate (idle-connection runs) have no place in the table.
    body["results"] = (
        [r for r in rows if isinstance(r, dict) and r.get("deliveries_per_s") is not None]
        if isinstance(rows, list)
        else []
    )
    return json_response(body)
