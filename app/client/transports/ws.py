"""WebSocket: one connection per subscription, the `subscribe` op with `after`, close codes mapped
to retry or stop as docs/protocol.md says."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from ..errors import AuthError, ForbiddenError, FourcastError, error_from_response
from ..events import Event
from .base import Dropped, Item, Opened, Options, ResetSignal, refused

SUBPROTOCOL = Subprotocol("fourcast.v1")
SUBSCRIBE_REF = "subscribe"

CLOSE_EXPIRED = 4401  # credentials expired or revoked
CLOSE_POLICY = 1008
"""Bad credentials only in answer to an `auth` op, which this client never sends (its credentials
go in the handshake, refused there with a 401): here it is always a close for abuse, after which
the credentials are still good, so it is retried after ABUSE_DELAY, as the browser client does."""
ABUSE_DELAY = 5.0
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_LATER = 1013
"""Try again later: fourcast refuses at the handshake instead, so this comes from what stands in
front of it (a proxy, a draining balancer). A wait was asked for, not another transport."""
TRY_LATER_DELAY = 5.0
LATER_DELAYS = {CLOSE_POLICY: ABUSE_DELAY, CLOSE_TRY_LATER: TRY_LATER_DELAY}
ERROR_KINDS: dict[str, type[FourcastError]] = {
    "unauthorized": AuthError,
    "invalid_token": AuthError,
    "token_expired": AuthError,
    "forbidden": ForbiddenError,
}
"""A refused `subscribe` op: its error code, as the exception an HTTP status would give."""


RETRY_LATER_CODES = ("rate_limited", "unavailable")
"""Refusals of `subscribe` that say "later" even without a `retry_after`."""


def _refusal(message: dict[str, Any]) -> Exception:
    """A refused `subscribe` op: retried after its `retry_after` when the server says later
    (as a 429 or 503 of the other transports is), else the error it names."""
    code, text = str(message.get("code")), str(message.get("message"))
    kind = ERROR_KINDS.get(code)
    if kind is not None:
        return kind(code, text)
    retry_after = message.get("retry_after")
    if retry_after is not None or code in RETRY_LATER_CODES:
        delay = float(retry_after) if isinstance(retry_after, int | float) else 0.0
        return Dropped(f"subscribe refused: {code}: {text}", min_delay=delay, busy=True)
    return FourcastError(code, text)


def ws_url(base_url: str) -> str:
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://") :].rstrip("/") + "/ws"
    return "ws://" + base_url.removeprefix("http://").rstrip("/") + "/ws"


class WebSocketTransport:
    name = "websocket"

    def __init__(self, options: Options) -> None:
        self.options = options

    async def stream(self, channel: str, cursor: str | None) -> AsyncGenerator[Item, None]:
        try:
            ws = await connect(
                ws_url(self.options.base_url),
                subprotocols=[SUBPROTOCOL],
                additional_headers=self.options.headers,
                open_timeout=self.options.connect_timeout,
                max_size=None,
                compression=None,
            )
        except InvalidStatus as exc:
            response = exc.response
            error = error_from_response(
                response.status_code, bytes(response.body or b""), response.headers
            )
            if error.retryable:
                raise refused(error, "handshake refused: ") from None
            raise error from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise Dropped(f"cannot connect: {exc or type(exc).__name__}") from None
        try:
            async with ws:
                subscribe: dict[str, Any] = {"op": "subscribe", "channel": channel}
                subscribe["ref"] = SUBSCRIBE_REF
                if cursor is not None:
                    subscribe["after"] = cursor
                await ws.send(json.dumps(subscribe))
                async for raw in ws:
                    try:
                        message = json.loads(raw)
                        op = message.get("op")
                    except (ValueError, AttributeError):
                        raise Dropped("the socket sent something that is no message") from None
                    if op == "event":
                        yield Event.from_json(message)
                    elif op == "reset":
                        after = message.get("next")
                        yield ResetSignal(after if isinstance(after, str) else None)
                    elif op == "ack" and message.get("ref") == SUBSCRIBE_REF:
                        yield Opened()
                    elif op == "error" and message.get("ref") == SUBSCRIBE_REF:
                        raise _refusal(message)
        except ConnectionClosed as exc:
            close = exc.rcvd.code if exc.rcvd is not None else 1006
            reason = exc.rcvd.reason if exc.rcvd is not None else "connection lost"
            if close == CLOSE_EXPIRED:
                raise AuthError("unauthorized", f"WebSocket closed {close}: {reason}") from None
            if close == CLOSE_FORBIDDEN:
                raise ForbiddenError("forbidden", f"WebSocket closed {close}: {reason}") from None
            # 1008 and 1013 say "later": `auto` waits and keeps this transport.
            delay = LATER_DELAYS.get(close, 0.0)
            raise Dropped(
                f"closed {close} {reason}".strip(), min_delay=delay, busy=delay > 0
            ) from None
        except OSError as exc:
            raise Dropped(f"connection lost: {exc}") from None
        raise Dropped("closed")
