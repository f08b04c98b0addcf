"""Chat rooms over REST: list, create, join, leave, members, and history pages."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from ...bus.events import EventError, parse_cursor
from ...errors import BadParameter, InvalidInput
from ...features.chat import (
    HISTORY_DEFAULT,
    HISTORY_MAX,
    MEMBERS_DEFAULT,
    MEMBERS_MAX,
    ROOMS_DEFAULT,
    ROOMS_MAX,
    validate_room_name,
)
from ...identity.budgets import ReadCharge, actor_key
from ...identity.policy import check_read
from ..deps import PrincipalDep, ServicesDep, UserDep, client_ip
from ..pollask import int_param
from ..responses import json_response, raw_json
from .channels import read_json_object

router = APIRouter(prefix="/api/rooms", tags=["chat"])


def room_param(room: str) -> str:
    """A room named in the path: a bad name is a bad parameter (400), as a bad channel is; a
    bad name in a body stays invalid input (422)."""
    try:
        return validate_room_name(room)
    except InvalidInput as exc:
        raise BadParameter(exc.message, code=exc.code) from None


@router.get("")
async def list_rooms(request: Request, services: ServicesDep) -> Response:
    """Rooms by name, a page at a time: `?limit=`, and `?after=` the previous page's `next`."""
    query = request.query_params
    limit = int_param("limit", query.get("limit"), ROOMS_DEFAULT, 1, ROOMS_MAX)
    after = query.get("after")
    return json_response(
        await services.chat.list_rooms(None if after is None else room_param(after), limit)
    )


@router.post("", status_code=201)
async def create_room(request: Request, services: ServicesDep, principal: UserDep) -> Response:
    body = await read_json_object(request)
    ip = client_ip(request, services.settings.trusted_proxies)
    room, created = await services.chat.create_room(principal, body.get("name"), ip)
    return json_response(room, 201 if created else 200)


@router.post("/{room}/join")
async def join(room: str, request: Request, services: ServicesDep, principal: UserDep) -> Response:
    ip = client_ip(request, services.settings.trusted_proxies)
    joined = await services.chat.join(principal, room_param(room), ip)
    return json_response({"room": room, "joined": joined})


@router.post("/{room}/leave")
async def leave(room: str, services: ServicesDep, principal: UserDep) -> Response:
    left = await services.chat.leave(principal, room_param(room))
    return json_response({"room": room, "left": left})


@router.get("/{room}/members")
async def members(
    room: str, request: Request, services: ServicesDep, principal: UserDep
) -> Response:
    """Members in the order they joined, a page at a time: `?limit=`, and `?after=` the previous
    page's `next`."""
    query = request.query_params
    limit = int_param("limit", query.get("limit"), MEMBERS_DEFAULT, 1, MEMBERS_MAX)
    return json_response(await services.chat.members(room_param(room), query.get("after"), limit))


@router.get("/{room}/messages")
async def messages(
    room: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> Response:
    """The newest messages (default 100); `?before=<cursor>` pages further back."""
    room = room_param(room)
    check_read(principal, f"room:{room}")
    limit = int_param("limit", request.query_params.get("limit"), HISTORY_DEFAULT, 1, HISTORY_MAX)
    raw_before = request.query_params.get("before")
    try:
        before = parse_cursor(raw_before) if raw_before else None
    except EventError as exc:
        raise BadParameter(exc.message, code=exc.code) from None
    # History pages are reads of the past like polls from the start: they spend the same budget,
    # for the entries read from the event log (paid before each read) and the messages returned.
    key = actor_key(principal, client_ip(request, services.settings.trusted_proxies))
    charge = None
    if key is not None:
        per = services.settings.poll_default_limit
        charge = ReadCharge(services.budgets.read_all, key, per)
    page = await services.chat.history(room, before, limit, charge)
    if charge is not None:
        charge.settle(len(page.messages))
    body = (
        b'{"messages":['
        + b",".join(e.json for e in page.messages)
        + b'],"before":'
        + orjson.dumps(page.before)
        + b"}"
    )
    return raw_json(body)
