"""`GET /api/channels/{channel}/presence`: who is subscribed now, and who is typing."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ...identity.policy import check_read
from ..deps import PrincipalDep, ServicesDep
from ..responses import json_response
from .channels import channel_param

router = APIRouter(prefix="/api/channels", tags=["presence"])


@router.get("/{channel}/presence")
async def presence(channel: str, services: ServicesDep, principal: PrincipalDep) -> Response:
    channel = channel_param(channel)
    check_read(principal, channel)
    members = await services.presence.members(channel)
    typing = await services.typing.typing(channel)
    return json_response({"members": members, "typing": typing})
