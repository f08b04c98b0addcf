"""Where a ticket's id is claimed when clustered (Redis): claimed once on every node, and a claim
given back (a poll refused as it is answered) claimable once more."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from app.identity.tickets import RedisTicketClaims


async def test_a_ticket_given_back_in_redis_can_be_claimed_once_more(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        node_a, node_b = RedisTicketClaims(redis), RedisTicketClaims(redis)
        assert await node_a.claim("t1", time.time() + 60)
        assert await node_a.claim("t2", time.time() + 60)
        assert not await node_b.claim("t1", time.time() + 60)
        await node_a.release("t1")
        assert await node_b.claim("t1", time.time() + 60)
        assert not await node_a.claim("t1", time.time() + 60)
        assert not await node_b.claim("t2", time.time() + 60)  # only the one given back
    finally:
        await redis.aclose()
