"""REST publish, and the two polling transports: short poll (wait=0) and long poll (wait>0)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from ...bus import PollResult
from ...bus.events import EventError, parse_poll_cursor, validate_channel
from ...errors import BadParameter, InvalidInput
from ...identity.budgets import actor_key
from ...identity.policy import check_read
from ...identity.principal import Principal
from ...services import Services
from ..deps import PrincipalDep, ServicesDep, client_ip
from ..responses import raw_json

router = APIRouter(prefix="/api/channels", tags=["channels"])

MAX_IDEMPOTENCY_KEY = 200


def channel_param(channel: str) -> str:
    try:
        return validate_channel(channel)
    except EventError as exc:
        raise BadParameter(exc.message, code=exc.code) from None


async def read_json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput("body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidInput("body must be a JSON object", code="invalid_body")
    return body


@router.post("/{channel}/events", status_code=201)
async def publish(
    channel: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> Response:
    """Publish an event. An `Idempotency-Key` makes a retry return the first event."""
    channel = channel_param(channel)
    body = await read_json_object(request)
    if "type" not in body:
        raise InvalidInput("missing field: type", code="missing_field")
    if "data" not in body:
        raise InvalidInput("missing field: data", code="missing_field")
    ephemeral = body.get("ephemeral", False)
    if not isinstance(ephemeral, bool):
        raise InvalidInput("ephemeral must be true or false", code="invalid_body")
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise BadParameter(f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} characters")
    result = await services.publisher.publish(
        principal, channel, body["type"], body["data"], ephemeral=ephemeral, idempotency_key=key
    )
    if result.event is None:
        return raw_json(b'{"event":null,"suppressed":true}', 202)
    return raw_json(result.event.json, 201 if result.created else 200)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise BadParameter(f"{name} must be between {low} and {high}")
    return value


def poll_body(result: PollResult) -> bytes:
    events = b",".join(e.json for e in result.events)
    reset = b"true" if result.reset else b"false"
    return (
        b'{"events":['
        + events
        + b'],"next":"'
        + result.next.encode()
        + b'","reset":'
        + reset
        + (b',"truncated":true}' if result.truncated else b"}")
    )


@router.get("/{channel}/events")
async def poll(
    channel: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> Response:
    """Short poll (`wait` absent or 0) or long poll (`wait` 1..60 s)."""
    channel = channel_param(channel)
    check_read(principal, channel)
    settings = services.settings
    limit = _int_param(request, "limit", settings.poll_default_limit, 1, settings.poll_max_limit)
    wait = _int_param(request, "wait", 0, 0, int(settings.long_poll_max_wait))
    after_raw = request.query_params.get("after")
    after: int | None = None
    marker: float | None = None
    if after_raw is not None and after_raw != "":
        try:
            after, marker = parse_poll_cursor(after_raw)
        except EventError as exc:
            raise BadParameter(exc.message, code=exc.code) from None
    if wait and services.draining:
        wait = 0
    ip = client_ip(request, settings.trusted_proxies)
    transport = "longpoll" if wait else "shortpoll"
    # A read without a cursor is a look at history (e.g. a streaming client finding the head),
    # not a poller following the log: only the latter holds a presence lease.
    following = after is not None
    if following:
        await touch_presence(services, principal, channel, transport, wait)
    if not wait:
        result = await services.bus.poll(channel, after, marker, limit, 0)
        if not after or result.reset:
            spend_read_all(services, principal, ip, result)
        _count_poll(services, transport, result)
        return raw_json(poll_body(result))
    # Watching for the client going away costs a task per poll; it matters for a person's
    # presence lease, so services and anonymous readers simply wait out their `wait`.
    gone = asyncio.ensure_future(_disconnected(request)) if principal.is_user else None
    user = principal.id if principal.is_user else None
    try:
        # A held long poll is an open connection like a stream: it counts against the caps.
        with services.connections.hold(user, ip):
            result = await services.bus.poll(channel, after, marker, limit, wait, give_up=gone)
    finally:
        if gone is not None:
            gone.cancel()
    # The lease runs from the end of the poll, not from the end of its longest possible wait.
    if following:
        await touch_presence(services, principal, channel, transport, 0)
    if not after or result.reset:
        spend_read_all(services, principal, ip, result)
    _count_poll(services, transport, result)
    return raw_json(poll_body(result))


def spend_read_all(services: Services, principal: Principal, ip: str, result: PollResult) -> None:
    """A read from the start of a channel (no cursor, 0, or one too old: a reset) that finds
    events spends the reader's budget, in pages of `poll_default_limit` events: re-reading whole
    histories in a loop gets 429 instead of its answer (polling a still empty channel at 0, or
    following a channel by its cursors, spends nothing)."""
    key = actor_key(principal, ip)
    if key is not None and result.events:
        cost = max(1.0, len(result.events) / services.settings.poll_default_limit)
        services.budgets.read_all.take_now(key, cost)


def _count_poll(services: Services, transport: str, result: PollResult) -> None:
    metrics = services.metrics
    metrics.answered_poll(transport)
    if result.events:
        metrics.wrote(transport, len(result.events), result.events[-1].ts)


async def _disconnected(request: Request) -> None:
    """Resolves when the client goes away, so a held long poll is not kept for nobody."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def touch_presence(
    services: ServicesDep, principal: Principal, channel: str, transport: str, hold: float
) -> None:
    """Polling readers count as present while they keep polling (a lease the chat feature keeps)."""
    if principal.is_user:
        await services.presence.touch(channel, principal, transport, hold)
