"""Running a `/ws` client's message: decoded, its op looked up in OPS and run, and what the op
raises turned into the reply the protocol promises (docs/protocol.md), so that no op repeats it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from ...bus import BusUnavailable
from ...errors import FourcastError, RateLimited, Unauthorized, Unavailable
from .codes import CLOSE_POLICY, CloseConnection
from .ops import OPS

if TYPE_CHECKING:
    from .connection import Connection

RETRY_AFTER = 2.0
"""Seconds a client is told to wait when the event log (Redis, the database) is away."""


async def dispatch(conn: Connection, text: str) -> None:
    """Decode one text message and run its op; the client's mistakes become error ops (counted,
    see `Connection.error`), an outage a retry_after, a failed `auth` op the close."""
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        conn.error(None, "invalid_json", "message is not valid JSON")
        return
    if not isinstance(msg, dict):
        conn.error(None, "invalid_message", "message must be a JSON object")
        return
    ref = msg.get("ref")
    if isinstance(ref, dict | list | bool):
        # Echoed in the reply: a nested value (orjson writes at most 254 levels) could not be,
        # and a client matches replies by a string or a number (docs/protocol.md).
        conn.error(None, "invalid_message", "ref must be a string or a number")
        return
    op = msg.get("op")
    handler = OPS.get(op) if isinstance(op, str) else None
    if handler is None:
        conn.error(ref, "unknown_op", f"unknown op: {str(op)[:40]}")
        return
    try:
        await handler(conn, msg, ref)
    except RateLimited as exc:
        # Counted like any error: a client that keeps going over budget is closed (1008).
        conn.error(ref, exc.code, exc.message, retry_after=exc.retry_after)
    except Unavailable as exc:
        # Not the client's fault (Redis or the database away): not counted, socket kept open.
        conn.retry_later(ref, exc.code, exc.message, exc.retry_after)
    except BusUnavailable as exc:
        conn.retry_later(ref, "unavailable", f"event log unavailable: {exc}", RETRY_AFTER)
    except Unauthorized as exc:
        if op == "auth":
            raise CloseConnection(CLOSE_POLICY, exc.message) from None
        conn.error(ref, exc.code, exc.message)
    except FourcastError as exc:
        conn.error(ref, exc.code, exc.message)
