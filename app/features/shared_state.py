"""State that must agree across nodes — presence, typing, rate limits — kept in-process on one
node and in Redis when `redis_url` is set (the Redis client is imported only then)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..identity.limits import RateLimiter, TokenBuckets
from ..settings import Settings
from .presence import LocalMembership, SharedPresence
from .typing import LocalTypingState, TypingState

REDIS_TIMEOUT = 1.5
"""Seconds before a Redis call counts as failed: an outage must fail fast, never hang."""


@dataclass(slots=True)
class SharedState:
    membership: SharedPresence
    typing: TypingState
    rate_limiter: RateLimiter
    redis: Any = None

    @classmethod
    def for_settings(cls, settings: Settings) -> SharedState:
        if not settings.redis_url:
            return cls(
                LocalMembership(),
                LocalTypingState(
                    settings.typing_throttle, settings.typing_expiry, settings.max_typing_entries
                ),
                TokenBuckets(settings.publish_rate, settings.publish_burst),
            )
        from redis.asyncio import Redis

        from ..identity.limits import RedisTokenBuckets
        from .presence_redis import RedisMembership, RedisTypingState

        redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
            health_check_interval=10,
        )
        return cls(
            RedisMembership(redis, settings.presence_lease),
            RedisTypingState(redis, settings.typing_throttle, settings.typing_expiry),
            RedisTokenBuckets(redis, settings.publish_rate, settings.publish_burst),
            redis,
        )

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
