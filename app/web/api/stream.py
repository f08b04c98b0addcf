"""Server-Sent Events: the channel's log as a `text/event-stream`, resumable by cursor.

Each event's JSON is encoded once (`Event.json`, with a small `sse_head`); a connection's writer
only joins the frames queued since its last write and hands them to the socket as one chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError

from app.bus import Sink, SinkOverflow
from app.bus.events import SSE_END, EventError, parse_poll_cursor
from app.bus.sink import Item
from app.errors import BadParameter, Forbidden
from app.identity.policy import check_read
from app.observability.metrics import Metrics
from app.server.http import EXTENSION as BODY_EXTENSION
from app.web.api.channels import channel_param
from app.web.deps import PrincipalDep, ServicesDep, client_ip

router = APIRouter(prefix="/api/channels", tags=["transports"])


class SlowReader(Exception):
    """An SSE reader fell further behind than its queue allows and is cut off."""


SLOW_READER_ERRORS: tuple[type[BaseException], ...] = (SlowReader, SendTimeoutError)
"""How a cut-off SSE stream ends: routine, logged as such, not as a server error."""


def reset_frame(channel: str) -> bytes:
    return b'event: reset\ndata: {"channel":"' + channel.encode() + b'"}\n\n'


def keepalive() -> ServerSentEvent:
    return ServerSentEvent(comment="keepalive")


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
    user = principal.id if principal.is_user else None
    ip = client_ip(request, settings.trusted_proxies)
    services.connections.acquire(user, ip)
    sink = Sink(settings.queue_max_events, settings.queue_max_bytes)
    metrics = services.metrics
    extension = request.scope.get("extensions", {}).get(BODY_EXTENSION)
    if extension is not None:
        write = extension["write"]

        def write_now(items: list[Item]) -> bool:
            chunk, events, newest = _chunk(items)
            if not write(chunk):
                return False
            metrics.wrote("sse", events, newest)
            return True

        # Parked streams get their events written straight from the event loop, no task switch.
        sink.direct = write_now

    async def frames() -> AsyncIterator[bytes]:
        presence = services.presence
        lease = None
        metrics.open["sse"].inc()
        # Catching up from a cursor paces itself to the reader, so it runs beside this writer:
        # awaited before the stream started, a backlog bigger than the queue would wait forever.
        subscribing = asyncio.create_task(services.bus.subscribe(channel, sink, after))
        subscribing.add_done_callback(_end_stream_if_failed(sink))
        try:
            if principal.is_user:
                lease = await presence.connect(channel, principal, "sse")
            yield b": connected\nretry: " + str(settings.sse_retry_ms).encode() + b"\n\n"
            async for chunk in _drain(sink, metrics):
                yield chunk
        finally:
            metrics.open["sse"].dec()
            services.connections.release(user, ip)
            # The stream usually ends by cancellation (the client left): shield the clean-up,
            # or its first await would be cancelled too and the presence.leave never sent.
            with anyio.CancelScope(shield=True):
                if not subscribing.done():
                    subscribing.cancel()  # subscribe() unsubscribes itself when interrupted
                    await asyncio.gather(subscribing, return_exceptions=True)
                elif not subscribing.cancelled() and subscribing.exception() is None:
                    await services.bus.unsubscribe(subscribing.result()[0])
                if lease is not None:
                    await presence.disconnect(lease)

    return EventSourceResponse(
        frames(),
        ping=int(settings.sse_keepalive) or 1,
        ping_message_factory=keepalive,
        send_timeout=settings.sse_send_timeout,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _end_stream_if_failed(sink: Sink) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            sink.close()  # the writer ends the stream; the client reconnects and resumes

    return done


async def _drain(sink: Sink, metrics: Metrics) -> AsyncIterator[bytes]:
    """Queued frames as one chunk per wake-up, until the sink closes or overflows."""
    while True:
        try:
            items = await sink.drain()
        except SinkOverflow:
            metrics.cut_off["sse"].inc()
            # Too slow a reader. Ending the stream normally would wait for the peer to read the
            # final chunk; failing it makes the server drop the connection now. EventSource
            # reconnects with Last-Event-ID and resumes.
            raise SlowReader from None
        if not items:
            if sink.closed:
                return
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
