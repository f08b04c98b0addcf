"""The picows WebSocket client (the one measured by default), and `WSClient`, the surface every
WebSocket client offers. One listener serves subscribers (fourcast, the floor, Nchan's raw frames)
and the service publisher (`publishers.Publisher`)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from orjson import loads

from bench.clients.target import BENCH_TYPE
from bench.track import Sub

if TYPE_CHECKING:
    from bench.clients.publishers import Publisher


class WSClient:
    """Common surface of the WebSocket clients: `ready` resolves on the subscribe ack."""

    ready: asyncio.Future[Any]
    closed: bool

    async def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def _make_picows_listener() -> type:
    from picows import WSListener, WSMsgType

    text = WSMsgType.TEXT
    close = WSMsgType.CLOSE

    class PicowsListener(WSListener, WSClient):  # type: ignore[misc]
        def __init__(
            self,
            sub: Sub | None,
            first: bytes | None,
            publisher: Publisher | None,
            raw: bool = False,
        ) -> None:
            self.sub = sub
            self.first = first
            self.publisher = publisher
            self.raw = raw  # Nchan: each frame is a published body, no envelope
            self.ready = asyncio.get_running_loop().create_future()
            self.closed = False
            self.closing = False
            self.close_code: int | None = None
            self.transport: Any = None

        def on_ws_connected(self, transport: Any) -> None:
            self.transport = transport
            if self.first is not None:
                transport.send(text, self.first)
            elif self.raw:
                self.ready.set_result(True)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            mtype = frame.msg_type
            if mtype == text:
                msg = loads(frame.get_payload_as_bytes())
                if self.raw:
                    self.sub.event(msg["seq"], msg["sent"], time.time() * 1000)  # type: ignore[union-attr]
                    return
                op = msg["op"]
                if op == "event":
                    d = msg["data"]
                    if msg["type"] == BENCH_TYPE:  # not presence.join and the like
                        self.sub.event(d["seq"], d["sent"], time.time() * 1000)  # type: ignore[union-attr]
                elif op == "subscribed" and not self.ready.done():  # the floor's ack
                    self.ready.set_result(msg)
                elif op == "ack":
                    if self.publisher is not None and (msg.get("ref") or 0) >= 1000:
                        self.publisher.acked(msg)
                    elif not self.ready.done():
                        self.ready.set_result(msg)
                elif op == "error":
                    if self.publisher is not None:
                        self.publisher.failed(msg)
                    if not self.ready.done():
                        self.ready.set_exception(RuntimeError(f"server error: {msg}"))
                elif op == "reset" and self.sub is not None:
                    self.sub.tracker.resets += 1
                elif op == "welcome" and self.first is None and not self.ready.done():
                    self.ready.set_result(msg)
            elif mtype == close:
                self.close_code = frame.get_close_code()
                transport.send_close(self.close_code)
                transport.disconnect()

        def on_ws_disconnected(self, transport: Any) -> None:
            if not self.closing and self.sub is not None and self.sub.alive:
                self.sub.alive = False
                self.sub.tracker.disconnects += 1
            self.closed = True
            if not self.ready.done():
                self.ready.set_exception(ConnectionError(f"closed {self.close_code}"))

        def send_text(self, data: bytes) -> None:
            self.transport.send(text, data)

        async def close(self) -> None:
            self.closing = True
            if self.transport is not None and not self.closed:
                self.transport.disconnect(graceful=False)

    return PicowsListener


_PICOWS: type | None = None


async def ws_connect_picows(
    url: str,
    sub: Sub | None,
    first: bytes | None,
    protocols: list[str],
    publisher: Publisher | None = None,
    headers: dict[str, str] | None = None,
    raw: bool = False,
) -> Any:
    global _PICOWS
    from picows import ws_connect

    if _PICOWS is None:
        _PICOWS = _make_picows_listener()
    cls = _PICOWS
    extra = dict(headers or {})
    if protocols:
        extra["Sec-WebSocket-Protocol"] = ", ".join(protocols)
    _transport, listener = await ws_connect(
        lambda: cls(sub, first, publisher, raw),
        url,
        extra_headers=extra,
        websocket_handshake_timeout=30,
    )
    return listener
