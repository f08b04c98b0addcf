"""Channel namespace rules: who may read and who may publish where."""

from __future__ import annotations

from ..errors import Forbidden, Unauthorized
from .principal import Principal


def namespace(channel: str) -> str:
    return channel.partition(":")[0]


def check_read(principal: Principal, channel: str) -> None:
    ns, _, rest = channel.partition(":")
    if ns == "public" or principal.is_service:
        return
    if principal.is_anonymous:
        raise Unauthorized("sign in to read this channel")
    if ns == "user" and rest != principal.id:
        raise Forbidden("user channels are private to their user")


def check_publish(principal: Principal, channel: str) -> None:
    ns = namespace(channel)
    if principal.is_service:
        return
    if principal.is_anonymous:
        raise Unauthorized("sign in to publish")
    if ns != "room":
        raise Forbidden(f"only services publish on {ns}: channels")
