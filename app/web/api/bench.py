"""`GET /api/bench/latest`: the newest benchmark results (bench/results/latest.json), for /compare."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Response

from app.web.errors import error_response

router = APIRouter(tags=["bench"])

LATEST = Path(__file__).resolve().parents[3] / "bench" / "results" / "latest.json"


@router.get("/api/bench/latest")
async def bench_latest() -> Response:
    """The file as written by `make bench` (read per request: it is small and may be replaced)."""
    try:
        body = LATEST.read_bytes()
    except OSError:
        return error_response(404, "not_found", "no benchmark results yet: run `make bench`")
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})
