"""Chat rooms over REST: list, create, join, leave, members, and history pages."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from app.bus.events import EventError, parse_cursor
from app.errors import BadParameter
from app.features.chat import HISTORY_DEFAULT, HISTORY_MAX, Chat
from app.identity.policy import check_read
from app.services import Services
from app.web.api.channels import read_json_object
from app.web.deps import PrincipalDep, ServicesDep, UserDep

router = APIRouter(prefix="/api/rooms", tags=["chat"])


def _chat(services: Services) -> Chat:
    return services.extras["chat"]  # type: ignore[no-any-return]


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@router.get("")
async def list_rooms(services: ServicesDep) -> Response:
    return _json({"rooms": await _chat(services).list_rooms()})


@router.post("", status_code=201)
async def create_room(request: Request, services: ServicesDep, principal: UserDep) -> Response:
    body = await read_json_object(request)
    room, created = await _chat(services).create_room(principal, body.get("name"))
    return _json(room, 201 if created else 200)


@router.post("/{room}/join")
async def join(room: str, services: ServicesDep, principal: UserDep) -> Response:
    joined = await _chat(services).join(principal, room)
    return _json({"room": room, "joined": joined})


@router.post("/{room}/leave")
async def leave(room: str, services: ServicesDep, principal: UserDep) -> Response:
    left = await _chat(services).leave(principal, room)
    return _json({"room": room, "left": left})


@router.get("/{room}/members")
async def members(room: str, services: ServicesDep, principal: UserDep) -> Response:
    return _json({"members": await _chat(services).members(room)})


@router.get("/{room}/messages")
async def messages(
    room: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> Response:
    """The newest messages (default 100); `?before=<cursor>` pages further back."""
    check_read(principal, f"room:{room}")
    raw_limit = request.query_params.get("limit") or str(HISTORY_DEFAULT)
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= HISTORY_MAX:
        raise BadParameter(f"limit must be between 1 and {HISTORY_MAX}")
    raw_before = request.query_params.get("before")
    try:
        before = parse_cursor(raw_before) if raw_before else None
    except EventError as exc:
        raise BadParameter(exc.message, code=exc.code) from None
    page = await _chat(services).history(room, before, int(raw_limit))
    body = (
        b'{"messages":['
        + b",".join(e.json for e in page.messages)
        + b'],"before":'
        + orjson.dumps(page.before)
        + b"}"
    )
    return Response(body, media_type="application/json")
