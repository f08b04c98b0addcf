"""Typing state shared through a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.features.typing_redis import RedisTypingState

pytestmark = pytest.mark.redis


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_a_rooms_typing_hash_sheds_the_people_no_longer_typing(redis: Redis) -> None:
    """A busy room's hash lives on while anyone types: the people whose signals lapsed are
    dropped from it when it is read, so it holds only who typed lately, not everyone ever."""
    lapsed = RedisTypingState(redis, throttle=0, expiry=0)  # every signal lapsed at once
    for n in range(50):
        await lapsed.signal("room:busy", f"person-{n}", f"Person {n}")
    typing = RedisTypingState(redis, throttle=0, expiry=60)
    await typing.signal("room:busy", "alice", "Alice")
    assert await typing.typing("room:busy") == [{"user": "alice", "name": "Alice"}]
    assert await redis.hkeys("fc:typing:room:busy") == [b"alice"]
