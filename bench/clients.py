"""Fast load-generator clients: picows (or aiohttp) WebSocket, raw asyncio protocols for SSE and HTTP.

Each subscriber hands `(seq, sent)` of every event to its `track.Sub`; the receive time is read once
per network read, not per event, so the hot path is: parse the frame, two comparisons, one append.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from bench.track import Sub, Tracker

loads = orjson.loads
now_ms: Callable[[], float] = lambda: time.time() * 1000  # noqa: E731

BENCH_TYPE = "bench"


def event_data(seq: int) -> dict[str, Any]:
    return {"seq": seq, "sent": time.time() * 1000}


# WebSocket subscribers ---------------------------------------------------------------------------


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


class AiohttpSub(WSClient):
    """aiohttp WebSocket subscriber: one task per connection (kept to compare against picows)."""

    session: Any = None

    def __init__(self, sub: Sub, first: bytes) -> None:
        self.sub = sub
        self.first = first
        self.ready = asyncio.get_running_loop().create_future()
        self.closed = False
        self.closing = False
        self.task: asyncio.Task[None] | None = None
        self.ws: Any = None

    @classmethod
    def get_session(cls) -> Any:
        import aiohttp

        if cls.session is None:
            cls.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=True)
            )
        return cls.session

    async def connect(
        self, url: str, protocols: list[str], headers: dict[str, str] | None = None
    ) -> AiohttpSub:
        self.ws = await self.get_session().ws_connect(
            url,
            protocols=protocols,
            autoping=True,
            heartbeat=None,
            max_msg_size=0,
            headers=headers,
        )
        await self.ws.send_str(self.first.decode())
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        import aiohttp

        sub = self.sub
        try:
            async for m in self.ws:
                if m.type != aiohttp.WSMsgType.TEXT:
                    continue
                msg = loads(m.data)
                op = msg["op"]
                if op == "event":
                    d = msg["data"]
                    if msg["type"] == BENCH_TYPE:
                        sub.event(d["seq"], d["sent"], time.time() * 1000)
                elif op in ("ack", "subscribed") and not self.ready.done():
                    self.ready.set_result(msg)
                elif op == "error" and not self.ready.done():
                    self.ready.set_exception(RuntimeError(f"server error: {msg}"))
                elif op == "reset":
                    sub.tracker.resets += 1
        finally:
            self.closed = True
            if not self.closing and sub.alive:
                sub.alive = False
                sub.tracker.disconnects += 1
            if not self.ready.done():
                self.ready.set_exception(ConnectionError("closed"))

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 2)
        if self.task is not None:
            self.task.cancel()


@dataclass
class Target:
    """Which server a client talks to and as whom: the per-server adapters key off this.

    `server`: fourcast | nchan | floor. `credential`: for fourcast, the API key (`auth` "key",
    sent as a bearer token) or a guest's session token (`auth` "guest", sent as the session
    cookie, as the chat page's browser does). The peers take no credentials.
    """

    server: str
    port: int
    channel: str
    auth: str = "key"
    credential: str = ""

    @property
    def nchan(self) -> bool:
        return self.server == "nchan"

    def headers(self) -> dict[str, str]:
        if self.server != "fourcast" or not self.credential:
            return {}
        if self.auth == "guest":
            return {"Cookie": f"{SESSION_COOKIE}={self.credential}"}
        return {"Authorization": f"Bearer {self.credential}"}

    def header_lines(self) -> str:
        return "".join(f"{k}: {v}\r\n" for k, v in self.headers().items())

    def with_credential(self, credential: str) -> Target:
        return Target(self.server, self.port, self.channel, self.auth, credential)

    # Paths
    @property
    def stream_path(self) -> str:
        return f"/sub?id={self.channel}" if self.nchan else f"/api/channels/{self.channel}/stream"

    @property
    def events_path(self) -> str:
        return f"/api/channels/{self.channel}/events"

    @property
    def publish_path(self) -> str:
        return f"/pub?id={self.channel}" if self.nchan else self.events_path


SESSION_COOKIE = "fourcast_session"


async def guest_token(port: int, name: str) -> str:
    """A guest session, as the chat page signs in: `POST /api/session` -> its token."""
    client = await HTTPClient.connect(port)
    try:
        body = orjson.dumps({"name": name})
        status, resp = await client.request(
            (
                f"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
    finally:
        client.close()
    if status != 201:
        raise RuntimeError(f"POST /api/session: {status} {resp[:200]!r}")
    return str(loads(resp)["token"])


async def ws_subscribe(kind: str, target: Target, tracker: Tracker, ref: int = 1) -> WSClient:
    """A WebSocket subscriber on the target's channel, connected and subscribed (ack received)."""
    port, channel = target.port, target.channel
    sub = tracker.new_sub()
    if target.nchan:
        client: WSClient = await ws_connect_picows(
            f"ws://127.0.0.1:{port}/sub?id={channel}", sub, None, [], raw=True
        )
        await asyncio.wait_for(client.ready, 30)
        return client
    url = f"ws://127.0.0.1:{port}/ws"
    protocols = ["fourcast.v1"] if target.server == "fourcast" else []
    if target.auth == "key" and target.credential and target.server == "fourcast":
        protocols.append(f"fourcast.bearer.{target.credential}")
    headers = {k: v for k, v in target.headers().items() if k == "Cookie"}
    first = orjson.dumps({"op": "subscribe", "channel": channel, "ref": ref})
    if kind == "aiohttp":
        client = await AiohttpSub(sub, first).connect(url, protocols, headers)
    else:
        client = await ws_connect_picows(url, sub, first, protocols, headers=headers)
    await asyncio.wait_for(client.ready, 30)
    return client


# SSE subscriber ----------------------------------------------------------------------------------


class SSEClient(asyncio.Protocol):
    """Raw SSE reader: collects `data:` lines, ignoring chunk-size lines and comments.

    The server writes whole frames per chunk, so a `data:` line is never split by chunk framing;
    a line split across TCP reads is kept in the buffer until its newline arrives.
    """

    def __init__(self, sub: Sub, request: bytes, raw: bool = False) -> None:
        self.sub = sub
        self.request = request
        self.raw = raw  # Nchan: the data line is the published body
        self.buf = b""
        self.headers_done = False
        self.ready = asyncio.get_running_loop().create_future()
        self.closed = False
        self.closing = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.headers_done:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end], self.buf[end + 4 :]
            self.headers_done = True
            if not head.startswith(b"HTTP/1.1 200"):
                self.ready.set_exception(RuntimeError(head.split(b"\r\n", 1)[0].decode()))
                return
            self.ready.set_result(True)
            data = b""
        buf = self.buf + data if self.buf else data
        cut = buf.rfind(b"\n")
        if cut < 0:
            self.buf = buf
            return
        self.buf = buf[cut + 1 :]
        now = time.time() * 1000
        sub = self.sub
        raw = self.raw
        for line in buf[:cut].split(b"\n"):
            if line.startswith(b"data: "):
                d = loads(line[6:])
                if not raw:
                    if d.get("type") != BENCH_TYPE:
                        continue  # presence.join and the like
                    d = d["data"]
                sub.event(d["seq"], d["sent"], now)
            elif line.startswith(b"event: reset"):
                sub.tracker.resets += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.closing and self.sub.alive:
            self.sub.alive = False
            self.sub.tracker.disconnects += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed"))

    async def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


async def sse_subscribe(target: Target, tracker: Tracker) -> SSEClient:
    port = target.port
    request = (
        f"GET {target.stream_path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Accept: text/event-stream\r\n{target.header_lines()}\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    sub = tracker.new_sub()
    raw = target.nchan
    _t, proto = await loop.create_connection(
        lambda: SSEClient(sub, request, raw), "127.0.0.1", port
    )
    await asyncio.wait_for(proto.ready, 30)
    return proto


# HTTP/1.1 keep-alive client (polls, REST publishes) ----------------------------------------------


class HTTPClient(asyncio.Protocol):
    """One keep-alive connection, one request at a time; responses framed by Content-Length."""

    def __init__(self) -> None:
        self.buf = b""
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.need = -1
        self.status = 0
        self.head = b""  # the last response's status line and headers
        # Pipelined use (HTTPPublisher): every response goes here instead of to a waiter.
        self.on_response: Callable[[int, bytes], None] | None = None

    @classmethod
    async def connect(cls, port: int) -> HTTPClient:
        loop = asyncio.get_running_loop()
        _t, proto = await loop.create_connection(cls, "127.0.0.1", port)
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buf[:end]
                self.head = head
                self.buf = self.buf[end + 4 :]
                self.status = int(head[9:12])
                low = head.lower()
                i = low.find(b"content-length:")
                if i < 0:
                    self.need = 0
                else:
                    j = low.find(b"\r\n", i)
                    self.need = int(low[i + 15 : j if j >= 0 else len(low)])
            if len(self.buf) < self.need:
                return
            body, self.buf = self.buf[: self.need], self.buf[self.need :]
            self.need = -1
            if self.on_response is not None:
                self.on_response(self.status, body)
                if not self.buf:
                    return
                continue
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result((self.status, body))
            if not self.buf:
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.closed or self.transport is None:
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def header(self, name: bytes) -> bytes | None:
        """A header of the last response (`name` in lower case)."""
        for line in self.head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == name:
                return v.strip()
        return None


def get_request(port: int, path: str, headers: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n".encode()


def post_request(port: int, path: str, body: bytes, api_key: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def publish_body(target: Target, seq: int) -> bytes:
    """What one published event's body is: fourcast and the floor take `{"type", "data"}`; Nchan
    publishes the body as it is, so there the body is the data."""
    data = b'{"seq":' + str(seq).encode() + b',"sent":' + repr(time.time() * 1000).encode() + b"}"
    if target.nchan:
        return data
    return b'{"type":"bench","data":' + data + b"}"


# Publisher (WebSocket publish op, service identity) ----------------------------------------------


class Pacer:
    """Publishes at a paced rate; subclasses say how one event is published."""

    seq: int
    sent: int
    acks: int
    errors: int

    def publish_one(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    async def run(self, rate: float, duration: float, tick: float = 0.005) -> None:
        """Publish `rate` events/s for `duration` s, catching up each tick (no coordinated omission)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        done = 0
        total = round(rate * duration)
        while done < total:
            elapsed = loop.time() - start
            due = min(total, int(rate * elapsed) + 1)
            while done < due:
                self.publish_one()
                done += 1
            await asyncio.sleep(tick)

    @property
    def outstanding(self) -> int:
        return self.sent - self.acks - self.errors

    async def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class HTTPPublisher(Pacer):
    """Publishes over one keep-alive HTTP connection, requests pipelined (not waiting for each
    answer): `POST /api/channels/CH/events` (fourcast, the floor) or `POST /pub?id=CH` (Nchan).
    The same for every server, so a publish costs each of them one HTTP request."""

    def __init__(self, target: Target, api_key: str) -> None:
        self.target = target
        self.api_key = api_key
        self.seq = self.sent = self.acks = self.errors = 0
        self.last_error: Any = None
        self.conn: HTTPClient | None = None
        port = target.port
        auth = f"Authorization: Bearer {api_key}\r\n" if target.server == "fourcast" else ""
        self.head = (
            f"POST {target.publish_path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()

    async def connect(self) -> HTTPPublisher:
        self.conn = await HTTPClient.connect(self.target.port)
        self.conn.on_response = self._answered
        return self

    def _answered(self, status: int, body: bytes) -> None:
        if 200 <= status < 300:
            self.acks += 1
        else:
            self.errors += 1
            self.last_error = (status, body[:200])

    def publish_one(self) -> int:
        self.seq += 1
        self.sent += 1
        body = publish_body(self.target, self.seq)
        assert self.conn is not None and self.conn.transport is not None
        self.conn.transport.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        return self.seq

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


class Publisher(Pacer):
    """Publishes `{"seq", "sent"}` events at a paced rate over one service WebSocket connection."""

    def __init__(self, port: int, channel: str, api_key: str) -> None:
        self.port = port
        self.channel = channel
        self.api_key = api_key
        self.seq = 0
        self.sent = 0
        self.acks = 0
        self.errors = 0
        self.last_error: Any = None
        self.conn: Any = None

    async def connect(self) -> Publisher:
        self.conn = await ws_connect_picows(
            f"ws://127.0.0.1:{self.port}/ws",
            None,
            None,
            ["fourcast.v1", f"fourcast.bearer.{self.api_key}"],
            publisher=self,
        )
        await asyncio.wait_for(self.conn.ready, 30)
        return self

    def acked(self, msg: dict[str, Any]) -> None:
        self.acks += 1

    def failed(self, msg: dict[str, Any]) -> None:
        self.errors += 1
        self.last_error = msg

    def publish_one(self) -> int:
        self.seq += 1
        self.sent += 1
        head = b'{"op":"publish","channel":"' + self.channel.encode()
        self.conn.send_text(
            head
            + b'","type":"bench","ref":'
            + str(999 + self.seq).encode()
            + b',"data":{"seq":'
            + str(self.seq).encode()
            + b',"sent":'
            + repr(time.time() * 1000).encode()
            + b"}}"
        )
        return self.seq

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()


async def make_publisher(via: str, target: Target, api_key: str) -> Pacer:
    """The scenario's publisher: `rest` (any server) or `websocket` (fourcast's `publish` op)."""
    if via == "websocket" and target.server == "fourcast":
        return await Publisher(target.port, target.channel, api_key).connect()
    return await HTTPPublisher(target, api_key).connect()
