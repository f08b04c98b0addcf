"""What an SSE stream's request must pass before it opens (app/web/api/stream.py), in the
order that spends nothing on a stream refused: its own checks (400, 403), then the connection
caps, then the budgets, then a ticket; each refusal gives back what was taken before it."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from ...bus.events import EventError, parse_poll_cursor
from ...errors import BadParameter, Forbidden
from ...identity.budgets import spend_subscribe
from ...identity.policy import check_read
from ...identity.principal import Principal
from ...services import Services
from ..deps import client_ip, get_reader
from .channels import channel_param


@dataclass(slots=True)
class Opening:
    """A stream admitted: its connection slot and budgets taken, its ticket (if any) spent."""

    channel: str
    principal: Principal
    after: int | None
    user: str | None
    ip: str


async def admit(request: Request, services: Services, channel: str) -> Opening | None:
    """The stream to open (None for a HEAD, which takes and spends nothing), or raises the
    refusal (FourcastError)."""
    principal, ticket = await get_reader(request)
    if not services.settings.sse_enabled:
        raise Forbidden("SSE is disabled on this server", code="transport_disabled")
    channel = channel_param(channel)
    check_read(principal, channel)
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or None
    try:
        after = None if raw is None else parse_poll_cursor(raw)[0]
    except EventError as exc:
        raise BadParameter(exc.message, code=exc.code) from None
    if request.method == "HEAD":
        return None
    user = principal.id if principal.is_user else None
    ip = client_ip(request, services.settings.trusted_proxies)
    services.connections.acquire(user, ip)
    try:
        # A stream opened is a subscribe (and, from 0, a read from the start): 429 over.
        give_back = spend_subscribe(services.budgets, user, principal, ip, after)
        if ticket is not None:
            try:
                await services.tokens.spend_ticket(ticket)
            except BaseException:
                give_back()
                raise
    except BaseException:
        services.connections.release(user, ip)
        raise
    return Opening(channel, principal, after, user, ip)
