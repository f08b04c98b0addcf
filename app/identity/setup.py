"""The token service a deployment's settings describe: revocations and ticket claims shared
through Redis when clustered, the embedding application's keys when configured."""

from __future__ import annotations

from typing import Any

from ..settings import Settings
from .apptokens import AppTokens
from .guestroom import GuestRoom, RedisGuestRoom
from .owntokens import CLOCK_SKEW
from .revocation import Revocations, RevocationStore
from .revocation_redis import RedisRevocations
from .tickets import RedisTicketClaims, TicketClaims
from .tokens import TokenService


def build_tokens(
    settings: Settings,
    redis: Any,
    local_tickets: TicketClaims,
    local_revocations: RevocationStore | None = None,
) -> TokenService:
    """`local_tickets` and `local_revocations` (the database's) are used unless Redis is
    configured."""
    ttl = settings.session_ttl + CLOCK_SKEW
    revocations: Revocations
    if redis is not None:
        revocations = RedisRevocations(
            ttl,
            redis,
            settings.redis_url,
            settings.max_revocations,
            connect_timeout=settings.redis_command_timeout,
        )
        tickets: TicketClaims = RedisTicketClaims(redis)
    else:
        revocations = Revocations(ttl, local_revocations, settings.max_revocations)
        tickets = local_tickets
    app_tokens = AppTokens(
        secret=settings.app_token_secret,
        jwks_url=settings.app_jwks_url,
        jwks_file=settings.app_jwks_file,
        issuer=settings.app_token_issuer,
        audience=settings.app_token_audience,
        cache_ttl=settings.app_jwks_cache_ttl,
        min_refetch=settings.app_jwks_min_refetch,
    )
    return TokenService(
        settings.resolved_secret_key(),
        api_keys=settings.all_api_keys(),
        session_ttl=settings.session_ttl,
        ticket_ttl=settings.ticket_ttl,
        revocations=revocations,
        tickets=tickets,
        app_tokens=app_tokens,
        max_verified=settings.max_verified_tokens,
    )


def build_guest_room(settings: Settings, redis: Any, revocations: Revocations) -> GuestRoom:
    """Room for guests' sign-outs: a share of `max_revocations`, counted on Redis when clustered
    (every node holds the same revocations)."""
    window = settings.session_ttl + CLOCK_SKEW
    limit = max(1, int(settings.guest_revocation_share * settings.max_revocations))
    if redis is not None:
        return RedisGuestRoom(revocations, window, limit, redis)
    return GuestRoom(revocations, window, limit)
