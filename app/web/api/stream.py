"""Server-Sent Events: the channel's log as a `text/event-stream`, resumable by cursor.

Frames are pre-rendered once per event (`Event.sse_frame`); a connection's writer only joins the
frames queued since its last write and hands them to the socket as one chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.bus import Sink, SinkOverflow
from app.bus.events import EventError, parse_poll_cursor
from app.errors import BadParameter, Forbidden
from app.identity.policy import check_read
from app.web.api.channels import channel_param
from app.web.deps import PrincipalDep, ServicesDep, client_ip

router = APIRouter(prefix="/api/channels", tags=["transports"])


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
    try:
        subscription, _ = await services.bus.subscribe(channel, sink, after)
    except BaseException:
        services.connections.release(user, ip)
        raise

    async def frames() -> AsyncIterator[bytes]:
        presence = services.extras.get("presence")
        lease = None
        try:
            if presence is not None and principal.is_user:
                lease = await presence.connect(channel, principal, "sse")
            yield b": connected\nretry: " + str(settings.sse_retry_ms).encode() + b"\n\n"
            async for chunk in _drain(sink, channel):
                yield chunk
        finally:
            await services.bus.unsubscribe(subscription)
            services.connections.release(user, ip)
            if lease is not None:
                await presence.disconnect(lease)

    return EventSourceResponse(
        frames(),
        ping=int(settings.sse_keepalive) or 1,
        ping_message_factory=keepalive,
        send_timeout=settings.sse_send_timeout,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _drain(sink: Sink, channel: str) -> AsyncIterator[bytes]:
    """Queued frames as one chunk per wake-up, until the sink closes or overflows."""
    while True:
        try:
            items = await sink.drain()
        except SinkOverflow:
            # Too slow a reader: end the stream; EventSource reconnects with Last-Event-ID.
            return
        if not items:
            if sink.closed:
                return
            continue
        chunk = b"".join(
            item.sse_frame if not isinstance(item, tuple) else reset_frame(item[1])
            for item in items
        )
        yield chunk
