"""One `/ws` connection: its state, its read loop and its replies.

Each connection has one bounded outbox (a Sink) shared by all its channels and its replies; the
ASGI task itself reads (each message's op is run by dispatch.py), and writing is the `Writer`
half's job; the credential's end is expiry.py. A reader that falls behind is closed with 4008 and
resumes by cursor; a failing handler closes with 1011, never dropping the socket silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import Receive, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from ...bus import Sink
from ...bus.hub import Subscription
from ...identity.principal import Principal
from ...server import FRAMES_EXTENSION
from ...server.websocket_adopt import adopt, bound_client
from ...services import Services
from ..wire import ws_frame
from .codes import CLOSE_ERROR, CLOSE_POLICY, CLOSE_TOO_BIG, CloseConnection
from .dispatch import dispatch
from .expiry import arm_expiry
from .writer import Writer

log = logging.getLogger(__name__)

MAX_ERRORS = 20
ERROR_WINDOW = 10.0


class Connection(Writer):
    # Slots, not a __dict__: 10,000 idle connections each carry one of these.
    __slots__ = (
        "_direct_write",
        "client_id",
        "closing",
        "counted_user",
        "disconnected",
        "errors",
        "expiry",
        "finishing",
        "ip",
        "leases",
        "principal",
        "raw_receive",
        "raw_send",
        "sending",
        "services",
        "settings",
        "sink",
        "subscriptions",
        "unwatch",
        "writer",
        "ws",
    )

    def __init__(
        self,
        websocket: WebSocket,
        raw_receive: Receive,
        raw_send: Send,
        services: Services,
        principal: Principal,
    ) -> None:
        self.ws = websocket
        self.raw_receive = raw_receive
        """The server's own `receive`: the read loop awaits it with no Starlette frame between,
        for as long as the socket is open."""
        self.raw_send = raw_send
        self.services = services
        self.settings = services.settings
        self.principal = principal
        self.client_id = secrets.token_urlsafe(9)
        self.sink = Sink(self.settings.queue_max_events, self.settings.queue_max_bytes)
        self.sink.on_overflow = self._overflowed
        self.sending: asyncio.Timeout | None = None
        self.subscriptions: dict[str, Subscription] = {}
        self.leases: dict[str, Any] = {}
        self.errors: list[float] = []
        self.writer = None
        self.closing = None
        self.finishing = False
        self.counted_user: str | None = None
        """The person this connection counts against in the connection caps."""
        self.ip = ""
        """The client's address (set by the endpoint, as the caps count it)."""
        self.expiry: asyncio.TimerHandle | None = None
        self.unwatch: Callable[[], None] | None = None
        """Stops watching for the person's sign-out (see `arm_expiry`)."""
        self.disconnected = False

    async def run(self) -> None:
        extensions = self.ws.scope.setdefault("extensions", {})
        extension = extensions.get(FRAMES_EXTENSION)
        bound_client(self.raw_send, self.settings.max_ws_message_bytes)
        if extension is None and (adopted := adopt(self.raw_send)) is not None:
            # Plain `uvicorn app.main:app`: its stock protocol gets the same extension.
            extension, self.raw_send = adopted
            extensions[FRAMES_EXTENSION] = extension
        if extension is not None and "write" in extension:
            # Writes go straight to the socket; a writer task runs only while the peer is
            # behind (an idle connection holds none: see Sink.writer_leaving).
            self._direct_write = extension["write"]
            fan_out = extension.get("fan_out")
            if fan_out is not None:
                # Single events by the hub's fan-out (app/bus/fanout.py), straight to the
                # server's transport; the server keeps the sink's gate.
                tally = self.services.metrics.tally["websocket"]
                self.sink.fan_out_through(ws_frame, fan_out(self.sink), tally)
            self.sink.write_on_demand(self._write_now, self._start_writer)
        else:
            self._start_writer()
        arm_expiry(self)
        self.reply(
            {
                "op": "welcome",
                "client_id": self.client_id,
                "user": self.principal.public(),
                "heartbeat": self.settings.heartbeat,
            }
        )
        try:
            await self._read_loop()
        except CloseConnection as exc:
            self.closing = (exc.code, exc.reason)
        except WebSocketDisconnect:
            self.disconnected = True
        except Exception:
            log.exception("websocket handler failed")
            self.closing = (CLOSE_ERROR, "internal error")
        finally:
            await self._finish()

    async def _read_loop(self) -> None:
        limit = self.settings.max_ws_message_bytes
        while True:
            message = await self.raw_receive()
            if message["type"] == "websocket.disconnect":
                self.disconnected = True
                return
            if self.sink.closed:
                # Closing (signed out, expired, shutting down): the close waits for the socket,
                # which a client that reads nothing never frees. Its messages are not acted on,
                # or it would go on publishing as a person no longer signed in.
                return
            text = message.get("text")
            if text is None:
                if len(message.get("bytes") or b"") > limit:
                    raise CloseConnection(CLOSE_TOO_BIG, "message too large")
                self.error(None, "binary_not_supported", "send JSON in text frames")
                continue
            # len(str) <= len(utf-8 bytes) <= 4 * len(str): check cheaply, encode only when unsure.
            if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
                raise CloseConnection(CLOSE_TOO_BIG, "message too large")
            await dispatch(self, text)

    async def unsubscribe(self, channel: str) -> None:
        subscription = self.subscriptions.pop(channel, None)
        if subscription is not None:
            await self.services.bus.unsubscribe(subscription)
        lease = self.leases.pop(channel, None)
        if lease is not None:
            await self.services.presence.disconnect(lease)

    def reply(self, message: dict[str, Any]) -> None:
        self.sink.push_text(orjson.dumps(message).decode())

    def retry_later(self, ref: Any, code: str, message: str, retry_after: float) -> None:
        self.reply(
            {
                "op": "error",
                "ref": ref,
                "code": code,
                "message": message,
                "retry_after": round(retry_after, 3),
            }
        )

    def error(self, ref: Any, code: str, message: str, *, retry_after: float | None = None) -> None:
        now = time.monotonic()
        self.errors = [t for t in self.errors if t > now - ERROR_WINDOW]
        self.errors.append(now)
        if len(self.errors) > MAX_ERRORS:
            raise CloseConnection(CLOSE_POLICY, "too many bad messages")
        reply: dict[str, Any] = {"op": "error", "ref": ref, "code": code, "message": message}
        if retry_after is not None:
            reply["retry_after"] = round(retry_after, 3)
        self.reply(reply)

    async def _finish(self) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        if self.unwatch is not None:
            self.unwatch()
        for channel in list(self.subscriptions):
            await self.unsubscribe(channel)
        self.finishing = True
        self.sink.close()  # the writer sends what is queued (e.g. a last error), then returns
        if self.writer is not None:
            if self.disconnected:
                self.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.writer, self.settings.ws_send_timeout)
        if not self.disconnected:
            await self._close()
