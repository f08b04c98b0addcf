"""WebSocket `/ws`: many channels over one connection, the contract's ops and close codes.

Each connection has one bounded outbox (a Sink) shared by all its channels and its replies, and one
writer task draining it; the ASGI task itself reads. A reader that falls behind is closed with 4008
and resumes by cursor; a failing handler closes with 1011, never dropping the socket silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ...bus import Sink, SinkOverflow
from ...bus.events import EventError, parse_cursor, parse_poll_cursor, validate_channel
from ...bus.hub import Subscription
from ...bus.sink import Item
from ...errors import Forbidden, FourcastError, InvalidInput, RateLimited, Unauthorized
from ...identity.policy import check_read
from ...identity.principal import Principal
from ...server import FRAMES_EXTENSION, FRAMES_MESSAGE
from ...services import Services
from ..deps import authenticate, check_origin, client_ip, services_of
from ..errors import response_for
from ..wire import text_frame, ws_frame, ws_message

router = APIRouter(tags=["transports"])
log = logging.getLogger(__name__)

SUBPROTOCOL = "fourcast.v1"
BEARER_PREFIX = "fourcast.bearer."

CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_ERROR = 1011
CLOSE_RESTART = 1012
CLOSE_SLOW = 4008
CLOSE_EXPIRED = 4401
CLOSE_FORBIDDEN = 4403

MAX_ERRORS = 20
ERROR_WINDOW = 10.0
MAX_CHANNELS = 500


class CloseConnection(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class WebSocketEndpoint:
    """`/ws` as a plain ASGI app rather than a FastAPI function endpoint, so that the raw ASGI
    `send` is at hand for the `fourcast.frames` extension (Starlette's WebSocket.send only
    passes the standard message types)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve(WebSocket(scope, receive, send), send)


websocket_endpoint = WebSocketEndpoint()
"""Dispatched by the fast lane (app/web/fastlane.py), the one way in to `/ws`."""


async def serve(websocket: WebSocket, raw_send: Send) -> None:
    services = services_of(websocket)
    settings = services.settings
    offered = websocket.scope.get("subprotocols") or []
    token = next((p[len(BEARER_PREFIX) :] for p in offered if p.startswith(BEARER_PREFIX)), None)
    ip = client_ip(websocket, settings.trusted_proxies)
    try:
        if not settings.ws_upgrades_enabled:
            raise Forbidden("WebSocket is disabled on this server", code="transport_disabled")
        principal = authenticate(websocket, token=token)
        if principal.via_cookie:
            check_origin(websocket)
        user = principal.id if principal.is_user else None
        services.connections.acquire(user, ip)
    except FourcastError as exc:
        # Refused before the upgrade: the client gets an HTTP status and a JSON body.
        await websocket.send_denial_response(response_for(exc))
        return
    services.metrics.open["websocket"].inc()
    connection = Connection(websocket, raw_send, services, principal)
    connection.counted_user = user
    try:
        await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        await connection.run()
    finally:
        services.metrics.open["websocket"].dec()
        # The auth op may have made it a person's connection since the handshake.
        services.connections.release(connection.counted_user, ip)


class Connection:
    # Slots, not a __dict__: 10,000 idle connections each carry one of these.
    __slots__ = (
        "_direct_write",
        "_tally",
        "client_id",
        "closing",
        "counted_user",
        "disconnected",
        "errors",
        "expiry",
        "finishing",
        "leases",
        "principal",
        "raw_send",
        "services",
        "settings",
        "sink",
        "subscriptions",
        "writer",
        "ws",
    )

    def __init__(
        self, websocket: WebSocket, raw_send: Send, services: Services, principal: Principal
    ) -> None:
        self.ws = websocket
        self.raw_send = raw_send
        self.services = services
        self.settings = services.settings
        self.principal = principal
        self.client_id = secrets.token_urlsafe(9)
        self.sink = Sink(self.settings.queue_max_events, self.settings.queue_max_bytes)
        self.subscriptions: dict[str, Subscription] = {}
        self.leases: dict[str, Any] = {}
        self.errors: list[float] = []
        self.writer: asyncio.Task[None] | None = None
        self.closing: tuple[int, str] | None = None
        self.finishing = False
        self.counted_user: str | None = None
        """The person this connection counts against in the connection caps."""
        self.expiry: asyncio.TimerHandle | None = None
        self.disconnected = False

    async def run(self) -> None:
        extension = self.ws.scope.get("extensions", {}).get(FRAMES_EXTENSION)
        if extension is not None and "write" in extension:
            # Writes go straight to the socket; a writer task runs only while the peer is
            # behind (an idle connection holds none: see Sink.writer_leaving).
            self._direct_write = extension["write"]
            self._tally = self.services.metrics.tally["websocket"]
            self.sink.write_on_demand(self._write_now, self._start_writer)
        else:
            self._start_writer()
        self._arm_expiry()
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

    # Reading

    async def _read_loop(self) -> None:
        limit = self.settings.max_ws_message_bytes
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                self.disconnected = True
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
            await self._handle(text)

    async def _handle(self, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.error(None, "invalid_json", "message is not valid JSON")
            return
        if not isinstance(msg, dict):
            self.error(None, "invalid_message", "message must be a JSON object")
            return
        ref = msg.get("ref")
        op = msg.get("op")
        handler = OPS.get(op) if isinstance(op, str) else None
        if handler is None:
            self.error(ref, "unknown_op", f"unknown op: {str(op)[:40]}")
            return
        try:
            await handler(self, msg, ref)
        except RateLimited as exc:
            self.reply(
                {
                    "op": "error",
                    "ref": ref,
                    "code": exc.code,
                    "message": exc.message,
                    "retry_after": round(exc.retry_after, 3),
                }
            )
        except Unauthorized as exc:
            if op == "auth":
                raise CloseConnection(CLOSE_POLICY, exc.message) from None
            self.error(ref, exc.code, exc.message)
        except FourcastError as exc:
            self.error(ref, exc.code, exc.message)

    async def op_auth(self, msg: dict[str, Any], ref: Any) -> None:
        token = msg.get("token")
        if not isinstance(token, str) or not token:
            raise Unauthorized("auth needs a token")
        principal = self.services.tokens.authenticate_bearer(token)
        if not self.principal.is_anonymous and principal.sender != self.principal.sender:
            raise Forbidden("a connection cannot change identity", code="identity_change")
        if principal.is_user and self.counted_user is None:
            # Signing in on an open connection counts it against the person's cap, as a
            # handshake with credentials would have.
            self.services.connections.add_user(principal.id)
            self.counted_user = principal.id
        self.principal = principal
        self._arm_expiry()  # a refreshed token moves the deadline
        self.reply({"op": "ack", "ref": ref, "user": principal.public()})

    async def op_subscribe(self, msg: dict[str, Any], ref: Any) -> None:
        channel = _channel(msg)
        check_read(self.principal, channel)
        after_raw = msg.get("after")
        try:
            after = None if after_raw is None else _parse_after(after_raw)
        except EventError as exc:
            raise InvalidInput(exc.message, code=exc.code) from None
        # Subscribing again replaces the subscription but keeps the presence lease: a client
        # resuming on the same connection has not left the room.
        lease = self.leases.pop(channel, None)
        if channel in self.subscriptions:
            await self._unsubscribe(channel)
        if len(self.subscriptions) >= MAX_CHANNELS:
            if lease is not None:
                await self.services.presence.disconnect(lease)
            raise InvalidInput(f"at most {MAX_CHANNELS} channels per connection", code="too_many")
        try:
            subscription, start = await self.services.bus.subscribe(channel, self.sink, after)
        except BaseException:
            if lease is not None:
                await self.services.presence.disconnect(lease)
            raise
        self.subscriptions[channel] = subscription
        self.reply({"op": "ack", "ref": ref, "channel": channel, "next": str(start)})
        if lease is not None:
            self.leases[channel] = lease
        elif self.principal.is_user:
            self.leases[channel] = await self.services.presence.connect(
                channel, self.principal, "websocket"
            )

    async def op_unsubscribe(self, msg: dict[str, Any], ref: Any) -> None:
        channel = _channel(msg)
        await self._unsubscribe(channel)
        self.reply({"op": "ack", "ref": ref, "channel": channel})

    async def op_publish(self, msg: dict[str, Any], ref: Any) -> None:
        for name in ("channel", "type", "data"):
            if name not in msg:
                raise InvalidInput(f"missing field: {name}", code="missing_field")
        ephemeral = msg.get("ephemeral", False)
        if not isinstance(ephemeral, bool):
            raise InvalidInput("ephemeral must be true or false")
        result = await self.services.publisher.publish(
            self.principal, msg["channel"], msg["type"], msg["data"], ephemeral=ephemeral
        )
        if result.event is None:
            self.reply({"op": "ack", "ref": ref, "id": None, "suppressed": True})
        else:
            self.reply({"op": "ack", "ref": ref, "id": result.event.cursor, "ts": result.event.ts})

    async def op_ping(self, msg: dict[str, Any], ref: Any) -> None:
        reply: dict[str, Any] = {"op": "pong", "ts": msg.get("ts"), "server_ts": time.time() * 1000}
        if ref is not None:
            reply["ref"] = ref
        self.reply(reply)

    async def _unsubscribe(self, channel: str) -> None:
        subscription = self.subscriptions.pop(channel, None)
        if subscription is not None:
            await self.services.bus.unsubscribe(subscription)
        lease = self.leases.pop(channel, None)
        if lease is not None:
            await self.services.presence.disconnect(lease)

    def _arm_expiry(self) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        expires_at = self.principal.expires_at
        if expires_at is not None:
            delay = max(0.0, expires_at - time.time())
            self.expiry = asyncio.get_running_loop().call_later(delay, self._expired)

    def _expired(self) -> None:
        self.closing = (CLOSE_EXPIRED, "credentials expired: refresh, then reconnect")
        self.sink.close()

    # Writing

    def reply(self, message: dict[str, Any]) -> None:
        self.sink.push_text(orjson.dumps(message).decode())

    def error(self, ref: Any, code: str, message: str) -> None:
        now = time.monotonic()
        self.errors = [t for t in self.errors if t > now - ERROR_WINDOW]
        self.errors.append(now)
        if len(self.errors) > MAX_ERRORS:
            raise CloseConnection(CLOSE_POLICY, "too many bad messages")
        self.reply({"op": "error", "ref": ref, "code": code, "message": message})

    def _start_writer(self) -> None:
        self.writer = asyncio.create_task(self._write_loop())

    async def _write_loop(self) -> None:
        timeout = self.settings.ws_send_timeout
        metrics = self.services.metrics
        extension = self.ws.scope.get("extensions", {}).get(FRAMES_EXTENSION)
        write = self._write_frames if extension is not None else self._write_messages
        try:
            while True:
                if self.sink.writer_leaving():
                    self.writer = None
                    return
                items = await self.sink.take()
                if items:
                    # One deadline per batch (no task per frame): a batch the peer will not
                    # accept within the send timeout is cancelled before its next write starts.
                    async with asyncio.timeout(timeout):
                        events, newest = await write(items)
                    if events:
                        metrics.wrote("websocket", events, newest)
                elif self.sink.closed:
                    if self.finishing:
                        return
                    # Closed by the hub: the server is shutting down.
                    self.closing = self.closing or (CLOSE_RESTART, "server restarting")
                    break
        except SinkOverflow:
            metrics.cut_off["websocket"].inc()
            self.closing = (CLOSE_SLOW, "too slow: resume from your last cursor")
        except TimeoutError:
            metrics.cut_off["websocket"].inc()
            # A send that cannot start is cancelled before any byte of its frame is written.
            self.closing = (CLOSE_SLOW, "too slow: resume from your last cursor")
        except (WebSocketDisconnect, OSError, RuntimeError):
            self.disconnected = True
            return
        # The close frame queues behind what the peer has not read yet; a peer that comes back
        # reads its events and then 4008, and a dead one is dropped by the protocol pings.
        # Closing also ends the reader's `receive`.
        await self._close(self.settings.heartbeat + self.settings.heartbeat_grace)

    async def _write_frames(self, items: list[Item]) -> tuple[int, float | None]:
        """Pre-built frames, the whole batch in one write (see app.server.websocket)."""
        frames, events, newest = _frames(items)
        await self.raw_send({"type": FRAMES_MESSAGE, "frames": frames})
        return events, newest

    def _write_now(self, items: Sequence[Item]) -> bool:
        """The sink's synchronous path: one write per loop iteration, no task switch."""
        if len(items) == 1 and not isinstance(item := items[0], tuple):
            # The fan-out's common case, kept short: one event's frame, shared by every reader.
            if not self._direct_write(ws_frame(item)):
                return False
            tally = self._tally
            tally.count += 1
            tally.countdown -= 1
            if tally.countdown <= 0:
                tally.sample(item.ts)
            return True
        frames, events, newest = _frames(items)
        if not self._direct_write(frames):
            return False
        if events:
            self.services.metrics.wrote("websocket", events, newest)
        return True

    async def _write_messages(self, items: list[Item]) -> tuple[int, float | None]:
        """Plain ASGI text messages, under any server."""
        send = self.ws.send
        events = 0
        newest: float | None = None
        for item in items:
            if isinstance(item, tuple):
                await send({"type": "websocket.send", "text": _control_text(item)})
            else:
                await send(ws_message(item))
                events += 1
                newest = item.ts
        return events, newest

    async def _close(self, timeout: float = 2) -> None:
        code, reason = self.closing or (1000, "")
        if self.ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(code, reason), timeout)

    async def _finish(self) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        for channel in list(self.subscriptions):
            await self._unsubscribe(channel)
        self.finishing = True
        self.sink.close()  # the writer sends what is queued (e.g. a last error), then returns
        if self.writer is not None:
            if self.disconnected:
                self.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.writer, self.settings.ws_send_timeout)
        if not self.disconnected:
            await self._close()


def _frames(items: Sequence[Item]) -> tuple[bytes, int, float | None]:
    if len(items) == 1 and not isinstance(item := items[0], tuple):
        return ws_frame(item), 1, item.ts  # the common case under fan-out: one event, no copy
    frames: list[bytes] = []
    events = 0
    newest: float | None = None
    for item in items:
        if isinstance(item, tuple):
            frames.append(text_frame(_control_text(item).encode()))
        else:
            frames.append(ws_frame(item))
            events += 1
            newest = item.ts
    return b"".join(frames), events, newest


def _control_text(item: tuple[str, str]) -> str:
    kind, value = item
    return '{"op":"reset","channel":"' + value + '"}' if kind == "reset" else value


def _channel(msg: dict[str, Any]) -> str:
    try:
        return validate_channel(msg.get("channel"))
    except EventError as exc:
        raise InvalidInput(exc.message, code=exc.code) from None


def _parse_after(cursor: object) -> int:
    """An event id, or a poll's `next` cursor (a client may switch transports mid-stream)."""
    if isinstance(cursor, str):
        return parse_poll_cursor(cursor)[0]
    return parse_cursor(cursor)


OPS = {
    "auth": Connection.op_auth,
    "subscribe": Connection.op_subscribe,
    "unsubscribe": Connection.op_unsubscribe,
    "publish": Connection.op_publish,
    "ping": Connection.op_ping,
}
