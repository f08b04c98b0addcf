"""`FOURCAST_REDIS_COMMAND_TIMEOUT` reaches every connection to Redis, and bounds the wait.

No wall time is asserted: the first test reads the value off the clients built from the
settings; the second orders two nodes' waits on one hung link by what happened (the short
timeout has answered, the long one still waits, then answers once the link is back).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from app.bus import Bus, BusUnavailable, NullJournal, create_bus
from app.bus.redis import RedisBackend, RedisIdempotencyStore
from app.features.shared_state import SharedState
from app.identity.revocation_redis import RedisRevocations
from app.identity.setup import build_tokens
from app.settings import Settings
from tests.fixtures.faultproxy import fault_proxy
from tests.fixtures.redis import RedisServer

pytestmark = pytest.mark.redis


def _timeouts(client: Any) -> tuple[object, object]:
    kwargs = client.connection_pool.connection_kwargs
    return kwargs.get("socket_timeout"), kwargs.get("socket_connect_timeout")


async def test_the_setting_reaches_every_redis_connection(tmp_path: Any) -> None:
    settings = Settings(
        redis_url="redis://127.0.0.1:9/0",  # never connected to: the clients connect lazily
        secret_key="s" * 48,
        data_dir=tmp_path,
        redis_command_timeout=0.25,
    )
    backend = cast(RedisBackend, create_bus(settings, NullJournal()).backend)
    shared = SharedState.for_settings(settings)
    try:
        assert backend.redis.connection_pool.timeout == 0.25  # type: ignore[attr-defined]
        assert _timeouts(backend.redis) == (0.25, 0.25)
        assert _timeouts(backend._reader)[1] == 0.25
        assert _timeouts(backend._subscriber)[1] == 0.25
        assert backend.command_timeout == 0.25  # the start-up wait for the subscription
        assert _timeouts(shared.redis) == (0.25, 0.25)  # presence, typing, rate limits
        tokens = build_tokens(settings, shared.redis, local_tickets=cast(Any, None))
        revocations = cast(RedisRevocations, tokens.revocations)
        assert revocations._connect_timeout == 0.25  # its pub/sub listener's own connection
    finally:
        for client in (backend.redis, backend._reader, backend._subscriber):
            await client.aclose(close_connection_pool=True)
        await shared.close()


async def test_a_short_timeout_answers_while_a_long_one_still_waits(
    redis_url: str, redis_server: RedisServer
) -> None:
    with fault_proxy("127.0.0.1", redis_server.port) as proxy:
        url = f"redis://{proxy.url_host_port}/0"
        short = RedisBackend(url, NullJournal(), 1000, command_timeout=0.2)
        long = RedisBackend(url, NullJournal(), 1000, command_timeout=60)
        buses = [Bus(b, RedisIdempotencyStore(b, ttl=60)) for b in (short, long)]
        for bus in buses:
            await bus.start()
        try:
            await short.check()  # both command connections open, then the link hangs
            await long.check()
            proxy.set_mode("blackhole")
            waiting = asyncio.ensure_future(long.check())
            with pytest.raises(BusUnavailable):
                await short.check()
            assert not waiting.done()  # the long timeout has not run out: still waiting
            proxy.set_mode("pass")
            await waiting  # the held ping is answered: it waited, and did not fail
        finally:
            proxy.set_mode("pass")
            for bus in buses:
                await bus.stop()
