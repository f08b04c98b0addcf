"""Server-Sent Events: the channel's log as a `text/event-stream`, resumable by cursor.

Each event's JSON is encoded once (`Event.json`, with a small `sse_head`); a connection's writer
only joins the frames queued since its last write and hands them to the socket as one chunk.

Served by `python -m app`, a stream runs in one task, the request's own
(`OneTaskEventSourceResponse`); under any other server it runs as sse-starlette's
`EventSourceResponse` does, with its task group.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.event import ensure_bytes
from sse_starlette.sse import SendTimeoutError
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ...bus import Bus, BusUnavailable, Sink, SinkOverflow
from ...bus.events import SSE_END, EventError, parse_poll_cursor
from ...bus.hub import Subscription
from ...bus.sink import Item
from ...errors import BadParameter, Forbidden, FourcastError
from ...identity.policy import check_read
from ...observability.metrics import Metrics
from ...server.http import EXTENSION as BODY_EXTENSION
from ..deps import PrincipalDep, ServicesDep, client_ip, get_principal, services_of
from ..errors import bus_unavailable_response, response_for
from ..middleware import SECURITY_HEADERS
from .channels import channel_param

router = APIRouter(prefix="/api/channels", tags=["transports"])


class SlowReader(Exception):
    """An SSE reader fell further behind than its queue allows and is cut off."""


SLOW_READER_ERRORS: tuple[type[BaseException], ...] = (SlowReader, SendTimeoutError)
"""How a cut-off SSE stream ends: routine, logged as such, not as a server error."""


def reset_frame(channel: str) -> bytes:
    return b'event: reset\ndata: {"channel":"' + channel.encode() + b'"}\n\n'


def keepalive() -> ServerSentEvent:
    return ServerSentEvent(comment="keepalive")


KEEPALIVE = ensure_bytes(keepalive(), EventSourceResponse.DEFAULT_SEPARATOR)


_HEADERS: dict[tuple[tuple[bytes, bytes], ...], list[tuple[bytes, bytes]]] = {}
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


class OneTaskEventSourceResponse(EventSourceResponse):
    """sse-starlette's response, streamed from the request's own task when the server can report
    a disconnect (the `on_disconnect` of `fourcast.body`).

    `EventSourceResponse` runs four tasks per stream in an anyio task group (the body, pings, a
    shutdown listener and a disconnect listener), with their cancel scopes and events: 21 of the
    52 KiB an idle stream cost (measured). Here the body iterator sends its own keepalives (it
    wakes on a timeout), the server's disconnect callback closes the stream's sink, and so does
    shutdown (`Bus.drain`): each of them wakes the one task, which ends the stream. Headers,
    encoding, HEAD and the send timeout are sse-starlette's; without the extension (another
    server, an in-process ASGI transport) the inherited task-group path runs unchanged.
    """

    def __init__(self, *args: Any, one_task: bool = False, **kwargs: Any) -> None:
        """`one_task`: the body iterator sends its own keepalives and ends on disconnect."""
        super().__init__(*args, **kwargs)
        self.one_task = one_task
        # Every stream sends the same headers: share one list rather than hold a copy each.
        self.raw_headers = _HEADERS.setdefault(tuple(self.raw_headers), self.raw_headers)
        if one_task:
            del self._send_lock  # only the task group's body and ping tasks contend for it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.one_task or scope.get("method") == "HEAD":
            await super().__call__(scope, receive, send)
            return
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        body = self.body_iterator
        try:
            async for chunk in body:
                await self._send_within_timeout(
                    send, {"type": "http.response.body", "body": chunk, "more_body": True}
                )
        finally:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                await aclose()  # runs the body's clean-up when the send failed or timed out
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if self.background is not None:
            await self.background()

    async def _send_within_timeout(self, send: Send, message: Message) -> None:
        """sse-starlette's send timeout, with a plain asyncio timeout for a cancel scope."""
        try:
            async with asyncio.timeout(self.send_timeout):
                await send(message)
        except TimeoutError:
            raise SendTimeoutError from None


class StreamEndpoint:
    """The stream route as a plain ASGI app, past FastAPI's routing and dependency solving: a
    stream's task lives as long as the connection, and those layers' frames and exit stacks
    would stay on its stack all that time (measured: 3.7 KiB per idle stream). The FastAPI
    route below stays for the OpenAPI schema and runs the same function; only dispatch differs.
    Errors raised here reach the app's exception handlers as they do from a FastAPI route."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The Request (and the headers it parsed) is not kept for the life of the stream.
        response = await self._open(scope, receive)
        await response(scope, receive, send)

    @staticmethod
    async def _open(scope: Scope, receive: Receive) -> EventSourceResponse:
        request = Request(scope, receive)
        principal = await get_principal(request)
        return await stream(
            scope["path_params"]["channel"], request, services_of(request), principal
        )


_SECURED: dict[int, tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]] = {}


async def serve_stream(scope: Scope, receive: Receive, send: Send, channel: str) -> None:
    """The stream as app/web/fastlane.py's lane serves it, outside the middleware stack (whose
    layers would sit on the stream's stack all its life: measured, ~3 KiB per idle stream). So
    it adds the security headers itself and turns errors into responses as the app would."""
    scope["path_params"] = {"channel": channel}
    response: Response
    try:
        response = await StreamEndpoint._open(scope, receive)
    except FourcastError as exc:
        response = response_for(exc)
    except BusUnavailable as exc:
        response = bus_unavailable_response(exc)
    if isinstance(response, EventSourceResponse):
        # Every stream shares one header list (see OneTaskEventSourceResponse): so does this.
        shared = response.raw_headers
        cached = _SECURED.get(id(shared))
        if cached is None or cached[0] is not shared:
            cached = _SECURED[id(shared)] = (shared, [*shared, *SECURITY_HEADERS])
        response.raw_headers = cached[1]
    else:
        response.raw_headers = [*response.raw_headers, *SECURITY_HEADERS]
    await response(scope, receive, send)


# Added first, so it is the route that matches.
router.add_route(
    router.prefix + "/{channel}/stream", StreamEndpoint(), methods=["GET"], include_in_schema=False
)


@router.get("/{channel}/stream")
async def stream(
    channel: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> EventSourceResponse:
    """Resumes from `Last-Event-ID` or `?after=`; without either, live from now."""
    settings = services.settings
    if not settings.sse_enabled:
        raise Forbidden("SSE is disabled on this server", code="transport_disabled")
    channel = channel_param(channel)
    check_read(principal, channel)
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or None
    try:
        after = None if raw is None else parse_poll_cursor(raw)[0]
    except EventError as exc:
        raise BadParameter(exc.message, code=exc.code) from None
    if request.method == "HEAD":
        # Headers alone (sse-starlette never runs the body for HEAD): no connection slot taken.
        return OneTaskEventSourceResponse(_nothing(), headers=STREAM_HEADERS)
    user = principal.id if principal.is_user else None
    if user is not None:
        services.budgets.subscribe.take_now(user)  # a stream opened is a subscribe (429 over)
    ip = client_ip(request, settings.trusted_proxies)
    services.connections.acquire(user, ip)
    sink = Sink(settings.queue_max_events, settings.queue_max_bytes)
    metrics = services.metrics
    extension = request.scope.get("extensions", {}).get(BODY_EXTENSION)
    if extension is not None:
        write = extension["write"]
        write_framed = extension.get("write_framed")
        tally = metrics.tally["sse"]

        def write_now(items: list[Item]) -> bool:
            if write_framed is not None and len(items) == 1 and not isinstance(items[0], tuple):
                # The fan-out's common case: the event's chunk, made once for every stream.
                event = items[0]
                if not write_framed(event.sse_chunk):
                    return False
                tally.count += 1
                tally.countdown -= 1
                if tally.countdown <= 0:
                    tally.sample(event.ts)
                return True
            chunk, events, newest = _chunk(items)
            if not write(chunk):
                return False
            metrics.wrote("sse", events, newest)
            return True

        # Parked streams get their events written straight from the event loop, no task switch.
        sink.direct = write_now
    on_disconnect = None if extension is None else extension.get("on_disconnect")
    if on_disconnect is not None:
        # The client leaving closes the sink, which wakes (and ends) the stream's one task.
        on_disconnect(sink.close)
    keepalive_every = settings.sse_keepalive if on_disconnect is not None else None

    async def frames() -> AsyncIterator[bytes]:
        presence = services.presence
        lease = None
        subscription: Subscription | None = None
        metrics.open["sse"].inc()
        # Expiry or sign-out closes the sink, which ends the stream.
        stop_watching = services.tokens.watch(principal, sink.close)

        def subscribed(task: asyncio.Task[tuple[Subscription, int]]) -> None:
            # Keep the subscription, not the finished task: an idle stream should not carry it.
            nonlocal subscribing, subscription
            subscribing = None
            if task.cancelled():
                return
            if task.exception() is not None:
                sink.close()  # the stream ends; the client reconnects and resumes
                return
            subscription = task.result()[0]

        # Catching up from a cursor paces itself to the reader, so it runs beside this writer:
        # awaited before the stream started, a backlog bigger than the queue would wait forever.
        subscribing: asyncio.Task[tuple[Subscription, int]] | None = asyncio.create_task(
            services.bus.subscribe(channel, sink, after)
        )
        subscribing.add_done_callback(subscribed)
        try:
            if principal.is_user:
                lease = await presence.connect(channel, principal, "sse")
            yield b": connected\nretry: " + str(settings.sse_retry_ms).encode() + b"\n\n"
            async for chunk in _drain(sink, metrics, keepalive_every, services.bus):
                yield chunk
        finally:
            stop_watching()
            metrics.open["sse"].dec()
            services.connections.release(user, ip)
            # The stream usually ends by cancellation (the client left): shield the clean-up,
            # or its first await would be cancelled too and the presence.leave never sent.
            with anyio.CancelScope(shield=True):
                task = subscribing
                if task is not None:
                    # Not yet seen by `subscribed` (its callback runs a loop step after the task
                    # ends): cancel it if it still runs, or take its subscription if it finished.
                    if not task.done():
                        task.cancel()  # subscribe() unsubscribes itself when interrupted
                    await asyncio.gather(task, return_exceptions=True)
                    if not task.cancelled() and task.exception() is None:
                        subscription = task.result()[0]
                if subscription is not None:
                    await services.bus.unsubscribe(subscription)
                if lease is not None:
                    await presence.disconnect(lease)

    return OneTaskEventSourceResponse(
        frames(),
        ping=int(settings.sse_keepalive) or 1,
        ping_message_factory=keepalive,
        send_timeout=settings.sse_send_timeout,
        headers=STREAM_HEADERS,
        one_task=keepalive_every is not None,
    )


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that ends at once


async def _drain(
    sink: Sink, metrics: Metrics, keepalive_every: float | None, bus: Bus
) -> AsyncIterator[bytes]:
    """Queued frames as one chunk per wake-up, until the sink closes or overflows; with
    `keepalive_every`, a keepalive comment after that long without a wake-up."""
    while True:
        try:
            items = await sink.drain(keepalive_every)
        except SinkOverflow:
            metrics.cut_off["sse"].inc()
            # Too slow a reader. Ending the stream normally would wait for the peer to read the
            # final chunk; failing it makes the server drop the connection now. EventSource
            # reconnects with Last-Event-ID and resumes.
            raise SlowReader from None
        if not items:
            if sink.closed:
                return
            if keepalive_every is not None:
                if bus.draining:
                    return  # shutting down, and the sink was not in the hub to be closed yet
                yield KEEPALIVE
            continue
        chunk, events, newest = _chunk(items)
        yield chunk
        metrics.wrote("sse", events, newest)


def _chunk(items: list[Item]) -> tuple[bytes, int, float | None]:
    """The frames of queued items as one chunk, the count of events, and the newest `ts`."""
    parts: list[bytes] = []
    events = 0
    newest: float | None = None
    for item in items:
        if isinstance(item, tuple):
            parts.append(reset_frame(item[1]))
        else:
            parts += (item.sse_head, item.json, SSE_END)
            events += 1
            newest = item.ts
    return b"".join(parts), events, newest
