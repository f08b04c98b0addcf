"""Channel namespace rules: who may read and who may publish where.

An API key with scopes is limited to them; a person's token may grant channels beyond the
namespace rules (its `channels` claim, see docs/tokens.md).
"""

from __future__ import annotations

from ..errors import Forbidden, Unauthorized
from .principal import Principal


def namespace(channel: str) -> str:
    return channel.partition(":")[0]


def check_read(principal: Principal, channel: str) -> None:
    # The kind compared here, not through the properties: this runs for every poll.
    ns, _, rest = channel.partition(":")
    scopes = principal.scopes
    kind = principal.kind
    if kind == "service":
        if scopes is None or scopes.may_read(channel):
            return
        raise Forbidden(f"this API key may not read {channel}")
    if ns == "public":
        return
    if kind == "anonymous":
        raise Unauthorized("sign in to read this channel")
    if ns == "user" and rest != principal.id and not (scopes and scopes.may_read(channel)):
        raise Forbidden("user channels are private to their user")


def check_publish(principal: Principal, channel: str) -> None:
    ns = namespace(channel)
    scopes = principal.scopes
    if principal.is_service:
        if scopes is None or scopes.may_publish(channel):
            return
        raise Forbidden(f"this API key may not publish on {channel}")
    if principal.is_anonymous:
        raise Unauthorized("sign in to publish")
    if ns != "room" and not (scopes and scopes.may_publish(channel)):
        raise Forbidden(f"only services publish on {ns}: channels")
