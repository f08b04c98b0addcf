"""Guest sign-in, single-use tickets, and the small endpoints clients use to calibrate."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from ...bus.events import now_ms
from ...errors import BadParameter, Forbidden, InvalidInput, Unauthorized
from ...identity.limits import address_key
from ...identity.names import normalise_name
from ...identity.principal import PERSON_ID_RULE, is_person_id
from ...services import Services
from ..checks import check_origin, json_body
from ..deps import SESSION_COOKIE, PrincipalDep, ServiceDep, ServicesDep, UserDep, client_ip
from ..responses import json_response

router = APIRouter(prefix="/api", tags=["identity"])


class SessionRequest(BaseModel):
    name: str = Field(min_length=1, max_length=40)


@router.post("/session", status_code=201, dependencies=[Depends(json_body)])
async def create_session(body: SessionRequest, request: Request, services: ServicesDep) -> Response:
    """A guest session for the demo: a token, and the same token as an HttpOnly cookie."""
    if not services.settings.guests_allowed:
        # An embedding application's tokens are the only identities (docs/tokens.md).
        raise Forbidden("guest sign-in is off on this server", code="guest_signin_disabled")
    check_origin(request, services.settings)  # no signing a visitor in from a foreign page
    name = normalise_name(body.name)
    if not name:
        raise InvalidInput("name must be 1-40 printable characters", code="invalid_name")
    # Each guest is a new person with budgets of their own: sign-ups have one per address.
    ip = client_ip(request, services.settings.trusted_proxies)
    services.budgets.signup.take_now(address_key(ip))
    # Room for their sign-out (guests cannot take anyone's), counted from this moment.
    signed_up = await services.guests.admit()
    user_id = await services.accounts.create_guest(name, signed_up)
    token = services.tokens.issue_session(user_id, name, signed_up)
    response = json_response({"token": token, "user": {"id": user_id, "name": name}}, 201)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(services.settings.session_ttl),
        httponly=True,
        # Strict: a cross-site navigation (a link, a popup, a redirect) carries no session, so
        # another site cannot make a person poll, and so be seen present in a room. The pages
        # read it by their own same-origin requests, which always carry it.
        samesite="strict",
        secure=_secure(request, services),
        path="/",
    )
    return response


def _secure(request: Request, services: Services) -> bool:
    """`Secure` when configured (behind a TLS proxy), and whenever the request came over TLS
    (`fourcast serve --tls-cert`): else the browser would send it to plain http too."""
    return services.settings.secure_cookies or request.url.scheme == "https"


@router.get("/session")
async def whoami(principal: UserDep) -> Response:
    return json_response({"user": {"id": principal.id, "name": principal.name}})


@router.delete("/session", status_code=204)
async def sign_out(request: Request, services: ServicesDep, principal: PrincipalDep) -> Response:
    """Sign out: every token of this person issued until now is refused from here on, and their
    open WebSockets and streams close, on every node."""
    if principal.is_user:
        _, first = await services.tokens.revocations.revoke_once(principal.id)
        if first and principal.guest:  # counted as its sign-out from now on, not twice
            await services.guests.signed_out(principal.issued_at)
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        secure=_secure(request, services),
        httponly=True,
        samesite="strict",
    )
    return response


@router.delete("/people/{user_id}/sessions", status_code=204)
async def revoke_person(user_id: str, services: ServicesDep, service: ServiceDep) -> Response:
    """A service signs a person out everywhere (e.g. their account was closed)."""
    if service.scopes is not None:
        raise Forbidden("only an API key without scopes may revoke sessions")
    if not is_person_id(user_id):
        raise BadParameter(f"user id must match {PERSON_ID_RULE}")
    await services.tokens.revocations.revoke(user_id)
    return Response(status_code=204)


@router.post("/tickets", status_code=201)
async def create_ticket(services: ServicesDep, principal: PrincipalDep) -> Response:
    """A single-use credential for one connection within `ticket_ttl` seconds (`?ticket=`)."""
    if principal.is_anonymous:
        raise Unauthorized("sign in first")
    if principal.via_ticket:
        raise Unauthorized("a ticket cannot be exchanged for another ticket", code="invalid_ticket")
    if principal.is_user:
        services.budgets.ticket.take_now(principal.id)
    ticket = services.tokens.issue_ticket(principal)
    return json_response({"ticket": ticket, "expires_in": services.settings.ticket_ttl}, 201)


@router.get("/time")
async def server_time() -> Response:
    """The server clock, for clients correcting latency figures for clock offset."""
    return json_response({"ts": now_ms()})


@router.get("/info")
async def info(services: ServicesDep) -> Response:
    s = services.settings
    return json_response(
        {
            "name": "fourcast",
            "protocol": 1,
            "transports": {
                "websocket": s.ws_upgrades_enabled,
                "sse": s.sse_enabled,
                "longpoll": True,
                "shortpoll": True,
            },
            "limits": {
                "history_size": s.history_size,
                "max_event_bytes": s.max_event_bytes,
                "long_poll_max_wait": s.long_poll_max_wait,
                "heartbeat": s.heartbeat,
            },
        }
    )
