"""REST publish, and the two polling transports: short poll (wait=0) and long poll (wait>0)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from ...bus.events import EventError, validate_channel
from ...errors import BadParameter, InvalidInput
from ..deps import client_ip, get_principal, get_reader, services_of
from ..poll import PollAnswer, PollCore, Waiting
from ..pollentry import Later
from ..responses import raw_json

PREFIX = "/api/channels"
router = APIRouter(prefix=PREFIX, tags=["channels"])


def channel_in(path: str, suffix: str) -> str | None:
    """The `{channel}` of `/api/channels/{channel}<suffix>`, as the router would match it: the
    one rule the entrances that dispatch before the router (fast and quick lanes) share."""
    start = len(PREFIX) + 1
    if not (path.startswith(PREFIX) and path.endswith(suffix)) or path[start - 1] != "/":
        return None
    channel = path[start : -len(suffix)]
    return channel if channel and "/" not in channel else None


MAX_IDEMPOTENCY_KEY = 200


def idempotency_key_param(key: str | None) -> str | None:
    """An `Idempotency-Key` header as sent, checked: one rule for every route that takes one."""
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise BadParameter(f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} characters")
    return key


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


PUBLISH_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["type", "data"],
                "properties": {
                    "type": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                    "data": {"description": "Any JSON value"},
                    "ephemeral": {"type": "boolean", "default": False},
                },
            }
        }
    },
}


@router.post(
    "/{channel}/events",
    status_code=201,
    openapi_extra={"requestBody": PUBLISH_BODY},
    responses={
        200: {"description": "A retry with the same `Idempotency-Key`: the first event"},
        202: {"description": "Suppressed by a rule (e.g. a typing signal within its throttle)"},
    },
)
async def publish(
    channel: str,
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(description=f"Makes a retry return the first event (1..{MAX_IDEMPOTENCY_KEY})"),
    ] = None,
) -> Response:
    """Publish an event (the body's JSON is read and checked here, for the contract's errors).
    The app's fast lane gives this answer ahead of the router (app/web/publishentry.py)."""
    return await publish_event(request, channel, idempotency_key)


async def publish_event(request: Request, channel: str, idempotency_key: str | None) -> Response:
    """The publish route's answer; errors are raised (FourcastError, BusUnavailable)."""
    services = services_of(request)
    principal = await get_principal(request)
    channel = channel_param(channel)
    body = await read_json_object(request)
    if "type" not in body:
        raise InvalidInput("missing field: type", code="missing_field")
    if "data" not in body:
        raise InvalidInput("missing field: data", code="missing_field")
    ephemeral = body.get("ephemeral", False)
    if not isinstance(ephemeral, bool):
        raise InvalidInput("ephemeral must be true or false", code="invalid_body")
    key = idempotency_key_param(idempotency_key)
    result = await services.publisher.publish(
        principal,
        channel,
        body["type"],
        body["data"],
        ephemeral=ephemeral,
        idempotency_key=key,
        ip=client_ip(request, services.settings.trusted_proxies),
    )
    if result.event is None:
        return raw_json(b'{"event":null,"suppressed":true}', 202)
    return raw_json(result.event.json, 201 if result.created else 200)


POLL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Events after the cursor (`events`), the cursor to send next (`next`)"},
    400: {"description": "A bad channel, cursor, `limit` or `wait`"},
    403: {"description": "The caller may not read this channel"},
    429: {
        "description": "Over the budget for reads from the start of a channel, or (a long "
        "poll) at a connection cap; retry after `Retry-After` seconds"
    },
    503: {"description": "The event log is unavailable; retry after `Retry-After` seconds"},
}


@router.get("/{channel}/events", responses=POLL_RESPONSES)
async def poll(
    channel: str,
    request: Request,
    after: Annotated[
        str | None, Query(description="The `next` cursor of the previous answer")
    ] = None,
    limit: Annotated[
        str | None, Query(description="Most events per answer: an integer, 1..poll_max_limit")
    ] = None,
    wait: Annotated[
        str | None,
        Query(description="Seconds to wait for an event (long poll): an integer, 0..60"),
    ] = None,
) -> Response:
    """Short poll (`wait` absent or 0) or long poll (`wait` 1..60 s), answered by the poll core
    (app/web/poll.py). Most polls are answered through the same core before they reach the
    router (the quick lane, the app's ASGI entry: app/web/pollentry.py); this route answers
    those whose caller takes awaiting to tell (a ticket, an unfetched signing key)."""
    principal, ticket = await get_reader(request)
    core: PollCore = request.app.state.poll_core
    ip = client_ip(request, core.services.settings.trusted_proxies)
    if ticket is not None:
        # Spent only by a poll that is going to be answered: not by a bad request's 400 (one
        # refused only as it is answered gives it back, below).
        _, seconds, cursor, _ = core.check(channel, after, limit, wait, principal)
        if seconds and cursor is not None and not core.services.draining:
            # Held, a long poll counts against the connection caps: one they refuse (429, 503)
            # is refused here, before its ticket is spent (the core takes the slot as it holds
            # the poll; only a slot taken by another while the ticket is claimed is missed).
            with core.connections.hold(principal.id if principal.is_user else None, ip):
                pass
        await core.tokens.spend_ticket(ticket)
    later = Later()
    answer = core.answer(channel, after, limit, wait, principal, ip, later)
    if isinstance(answer, Waiting):
        answered = await later.wait(answer, request.receive if principal.is_user else None)
        if answered is None:
            return Response(status_code=204)  # nobody is left to read it
        answer = answered
    if ticket is not None and answer.status >= 400:
        # Refused only as it was answered (over the read-from-the-start budget, the event log
        # away, signed out while it waited): not served, so its ticket is usable again.
        await core.tokens.give_back_ticket(ticket)
    return Response(answer.body, answer.status, headers=_headers(answer))


def _headers(answer: PollAnswer) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in answer.headers}
