"""Server-Sent Events: the channel's log as a `text/event-stream`, resumable by cursor.

Dispatched by the fast lane (app/web/fastlane.py), in front of the middleware stack and the
app's error handling, so this adds the security headers itself and turns errors (unexpected
ones too) into the app's error responses. The response is
our own (app/web/sse.py): one task per stream. Where the server offers `fourcast.body`
(app/server/http.py), events are written straight from the fan-out as ready-made chunks
(app/web/wire.py), with no task switch, while the socket takes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ...bus import BusUnavailable, Sink, SinkOverflow
from ...bus.hub import Subscription
from ...bus.sink import Item
from ...errors import FourcastError
from ...identity.budgets import read_from_start_spender
from ...identity.principal import Principal
from ...observability.metrics import Metrics
from ...server import BODY_EXTENSION
from ...services import Services
from ..deps import forget_headers, services_of
from ..errors import bus_unavailable_response, response_for, unexpected_response
from ..middleware import SECURITY_HEADERS
from ..sse import HEADERS, EventStreamResponse, SlowReader
from ..wire import KEEPALIVE, sse_chunk, sse_items
from .stream_admit import Opening, admit

STREAM_HEADERS = [*HEADERS, *SECURITY_HEADERS]


async def serve_stream(scope: Scope, receive: Receive, send: Send, channel: str) -> None:
    response: Response
    try:
        response = await _open(scope, receive, channel)
    except FourcastError as exc:
        response = response_for(exc)
    except BusUnavailable as exc:
        response = bus_unavailable_response(exc)
    except Exception as exc:  # the fast lane is in front of the app's error handling
        response = unexpected_response(scope["method"], scope["path"], exc)
    if not isinstance(response, EventStreamResponse):
        response.raw_headers = [*response.raw_headers, *SECURITY_HEADERS]
    else:
        forget_headers(scope)
    await response(scope, receive, send)


async def _open(scope: Scope, receive: Receive, channel: str) -> Response:
    # A function of its own: the Request (and the headers it parsed) is not kept for the life
    # of the stream.
    request = Request(scope, receive)
    services = services_of(request)
    opening = await admit(request, services, channel)
    if opening is None:  # a HEAD: headers alone, nothing taken or spent
        return EventStreamResponse(_nothing(), send_timeout=None, headers=STREAM_HEADERS)
    return stream(request, services, opening)


def stream(request: Request, services: Services, opening: Opening) -> EventStreamResponse:
    """Resumes from `after` (`Last-Event-ID` or `?after=`); without it, live from now. Its
    connection slot and budgets are taken (`admit`)."""
    settings = services.settings
    channel, principal, after = opening.channel, opening.principal, opening.after
    user, ip = opening.user, opening.ip
    sink = Sink(settings.queue_max_events, settings.queue_max_bytes)
    extension = request.scope.get("extensions", {}).get(BODY_EXTENSION)
    if extension is not None:
        # Parked streams get their events written straight from the event loop.
        sink.direct = _direct_writer(extension, services.metrics)
        fan_out = extension.get("fan_out")
        if fan_out is not None:
            # Single events by the hub's fan-out (app/bus/fanout.py): each event's chunk, made
            # once for every stream, written behind the server's gate.
            socket = fan_out(sink)  # the server's transport; it keeps the sink's gate
            sink.fan_out_through(sse_chunk, socket, services.metrics.tally["sse"])
    on_disconnect = None if extension is None else extension.get("on_disconnect")
    if on_disconnect is not None:
        on_disconnect(sink.close)  # the client leaving wakes (and ends) the stream's one task
    body = _body(services, channel, principal, sink, after, user, ip)
    response = EventStreamResponse(
        body,
        send_timeout=settings.sse_send_timeout,
        headers=STREAM_HEADERS,
        on_gone=sink.close if on_disconnect is None else None,
        on_cut_off=services.metrics.cut_off["sse"].inc,
        # The slot `admit` took is given back by the body's clean-up, or here if it never runs.
        on_unsent=partial(services.connections.release, user, ip),
    )
    sink.on_overflow = response.overflowed
    return response


def _direct_writer(extension: dict[str, Any], metrics: Metrics) -> Callable[[Sequence[Item]], bool]:
    write = extension["write"]

    def write_now(items: Sequence[Item]) -> bool:
        chunk, events, newest = sse_items(items)
        if not write(chunk):
            return False
        metrics.wrote("sse", events, newest)
        return True

    return write_now


async def _body(
    services: Services,
    channel: str,
    principal: Principal,
    sink: Sink,
    after: int | None,
    user: str | None,
    ip: str,
) -> AsyncIterator[bytes]:
    """The stream's chunks, from subscribing to the channel to cleaning up after it."""
    settings, metrics, bus, presence = (
        services.settings,
        services.metrics,
        services.bus,
        services.presence,
    )
    metrics.open["sse"].inc()
    # Expiry or sign-out closes the sink, which ends the stream.
    stop_watching = services.tokens.watch(principal, sink.close)
    lease = None
    subscription: Subscription | None = None
    subscribing: asyncio.Future[tuple[Subscription, int]] | None = None
    try:
        if after is None:
            # Live from now: nothing to catch up, so no task beside this writer (an idle
            # stream would keep the finished task all its life).
            try:
                subscription, _ = await bus.subscribe(channel, sink, None)
            except Exception:
                # As when the task below fails: the stream ends, and the client resumes after
                # the `retry` delay, which it is told first (its own default may be none).
                yield _retry(settings.sse_retry_ms)
                return
        else:
            # Catching up from a cursor paces itself to the reader, so it runs beside this
            # writer: awaited first, a backlog bigger than the queue would wait forever.
            # A cursor too old or unknown spends the read-from-the-start budget: over it, the
            # subscribe fails before any history is copied, and the stream ends. So the client
            # is told it is live only once the subscription stands (its first page read and
            # paid for): `retry` alone, as above, if it never does.
            spend = read_from_start_spender(services.budgets, principal, ip)
            ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            standing = partial(_settle, ready, True)
            subscribing = asyncio.ensure_future(
                bus.subscribe(channel, sink, after, spend, standing)
            )
            subscribing.add_done_callback(partial(_subscribe_ended, sink, ready))
            if not await ready:
                yield _retry(settings.sse_retry_ms)
                return
        if principal.is_user:
            lease = await presence.connect(channel, principal, "sse", ip=ip)
        yield b": connected\n" + _retry(settings.sse_retry_ms)
        keepalives, keepalive = services.keepalives, settings.sse_keepalive
        while True:
            # Woken by the sweep when a keepalive is due: no timer of its own while parked.
            keepalives.add(sink, keepalive)
            try:
                items = await sink.take()
            except SinkOverflow:
                metrics.cut_off["sse"].inc()
                # Failing the stream drops the connection now; ending it normally would wait
                # for the peer to read the last chunk. EventSource reconnects and resumes.
                raise SlowReader from None
            if items:
                chunk, events, newest = sse_items(items)
                yield chunk
                metrics.wrote("sse", events, newest)
            elif sink.closed or bus.draining:
                return
            else:
                yield KEEPALIVE
    finally:
        services.keepalives.discard(sink)
        stop_watching()
        metrics.open["sse"].dec()
        services.connections.release(user, ip)
        # The stream usually ends by cancellation (the client left): shield the clean-up, or
        # its first await would be cancelled too and the presence leave never sent.
        await asyncio.shield(_clean_up(services, subscribing, subscription, lease))


def _subscribe_ended(
    sink: Sink, ready: asyncio.Future[bool], task: asyncio.Future[tuple[Subscription, int]]
) -> None:
    """Subscribing failed: the stream ends, the client reconnects and resumes. Or it ended
    without ever standing (the reader gone first): the stream is not told it is live."""
    if not task.cancelled() and task.exception() is not None:
        sink.close()
    _settle(ready, False)


def _settle(ready: asyncio.Future[bool], standing: bool) -> None:
    if not ready.done():
        ready.set_result(standing)


async def _clean_up(
    services: Services,
    subscribing: asyncio.Future[tuple[Subscription, int]] | None,
    subscription: Subscription | None,
    lease: Any,
) -> None:
    if subscribing is not None:
        if not subscribing.done():
            subscribing.cancel()  # subscribe() unsubscribes itself when interrupted
        await asyncio.gather(subscribing, return_exceptions=True)
        if not subscribing.cancelled() and subscribing.exception() is None:
            subscription = subscribing.result()[0]
    if subscription is not None:
        await services.bus.unsubscribe(subscription)
    if lease is not None:
        await services.presence.disconnect(lease)


def _retry(ms: int) -> bytes:
    """The reconnection delay's field, told before any way a stream may end."""
    return b"retry: %d\n\n" % ms


async def _nothing() -> AsyncIterator[bytes]:
    nothing: tuple[bytes, ...] = ()
    for chunk in nothing:  # an async generator that ends at once
        yield chunk
