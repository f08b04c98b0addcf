"""JSON responses built with orjson, from objects or from bytes that are already encoded."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def raw_json(body: bytes, status: int = 200) -> Response:
    """Bytes already encoded (an event's JSON, a poll body spliced from events)."""
    return Response(body, status_code=status, media_type="application/json")


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
