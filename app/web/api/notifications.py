"""Notifications: services send them; people list theirs, see the unread count, mark them read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from ...identity.policy import check_publish
from ..deps import ServiceDep, ServicesDep, UserDep
from ..pollask import bool_param
from ..responses import json_response
from .channels import MAX_IDEMPOTENCY_KEY, idempotency_key_param, read_json_object

router = APIRouter(prefix="/api/notifications", tags=["notifications"])


@router.post(
    "",
    status_code=201,
    responses={200: {"description": "A retry with the same `Idempotency-Key`: the first one"}},
)
async def send(
    request: Request,
    services: ServicesDep,
    service: ServiceDep,
    idempotency_key: Annotated[
        str | None,
        Header(description=f"Makes a retry return the first one (1..{MAX_IDEMPOTENCY_KEY})"),
    ] = None,
) -> Response:
    """`{user, title, body, url?}`: stored, then delivered as a `notification` on `user:<id>`."""
    key = idempotency_key_param(idempotency_key)
    body = await read_json_object(request)
    user = body.get("user")
    if isinstance(user, str):
        # Delivered on the person's channel: a key with scopes must be allowed to publish there.
        check_publish(service, f"user:{user}")
    sent, created = await services.notifications.send(body, service, idempotency_key=key)
    return json_response(sent, 201 if created else 200)


@router.get("", responses={400: {"description": "`unread` is not true or false"}})
async def list_mine(
    services: ServicesDep,
    principal: UserDep,
    unread: Annotated[
        str | None, Query(description="Only the unread ones: true or false (also 1/0, yes/no)")
    ] = None,
) -> Response:
    unread_only = bool_param("unread", unread)
    return json_response(await services.notifications.list(principal.id, unread_only=unread_only))


@router.post("/read-all")
async def read_all(services: ServicesDep, principal: UserDep) -> Response:
    return json_response(await services.notifications.mark_read(principal.id, None))


@router.post("/{notification_id}/read")
async def read_one(notification_id: str, services: ServicesDep, principal: UserDep) -> Response:
    return json_response(await services.notifications.mark_read(principal.id, notification_id))
