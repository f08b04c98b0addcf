"""State that must agree across nodes — presence, typing, rate limits — kept in-process on one
node and in Redis when `redis_url` is set (the Redis client is imported only then)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..identity.limits import RateLimiter, TokenBuckets
from ..settings import Settings
from .presence_shared import LocalMembership, SharedPresence
from .typing import LocalTypingState, TypingState


@dataclass(slots=True)
class SharedState:
    membership: SharedPresence
    typing: TypingState
    rate_limiter: RateLimiter
    redis: Any = None
    guard: Any = None

    @classmethod
    def for_settings(cls, settings: Settings) -> SharedState:
        if not settings.redis_url:
            return cls(
                LocalMembership(),
                LocalTypingState(
                    settings.typing_throttle, settings.typing_expiry, settings.max_typing_entries
                ),
                TokenBuckets(
                    settings.publish_rate, settings.publish_burst, settings.max_budget_keys
                ),
            )
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        from ..identity.limits import RedisTokenBuckets
        from .presence_redis import RedisMembership
        from .redis_shared import RedisGuard
        from .typing_redis import RedisTypingState

        # A Redis call fails after `redis_command_timeout`: an outage must fail fast, never hang.
        redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_command_timeout,
            socket_connect_timeout=settings.redis_command_timeout,
            health_check_interval=10,
            # One immediate retry on a broken connection (a pooled one is stale after Redis
            # restarted), none after a timeout: a hung Redis costs one timeout, not several.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        guard = RedisGuard()
        return cls(
            RedisMembership(redis, settings.presence_lease, guard=guard),
            RedisTypingState(redis, settings.typing_throttle, settings.typing_expiry, guard=guard),
            RedisTokenBuckets(redis, settings.publish_rate, settings.publish_burst),
            redis,
            guard,
        )

    async def check(self) -> None:
        """Raise `Unavailable` when the shared Redis does not answer (readiness)."""
        if self.redis is None or self.guard is None:
            return
        with self.guard("shared state"):
            await self.redis.ping()

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
