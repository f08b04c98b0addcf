"""How a node's bus reaches Redis: a few connections, and commands that fail fast.

The bus holds a bounded command pool, one reader and one pub/sub connection (live.py), never a
connection per client (the features' shared state and the revocation watch have their own:
app/features/shared_state.py, app/identity/revocation.py). Commands fail fast with
`BusUnavailable` while Redis is down or hung.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from ..backend import BusUnavailable
from ..failfast import FailFast
from .live import READ_BLOCK_MS

T = TypeVar("T")

log = logging.getLogger(__name__)

ERRORS = (RedisError, OSError, RuntimeError)
"""What a command to an unreachable Redis raises. RuntimeError too: under uvloop, a connection
reset during redis-py's handshake surfaces as "unable to perform operation on <TCPTransport
closed=True>" instead of a ConnectionError."""


def connect(url: str, pool_size: int, command_timeout: float) -> tuple[Redis, Redis, Redis]:
    """A node's clients: the command pool, the reader and the pub/sub subscriber.

    `command_timeout` (`redis_command_timeout`): seconds before a command to a hung Redis, or a
    connect, fails; also the wait for a free pooled connection.
    """
    no_retry = Retry(NoBackoff(), 0)  # fail fast: the caller (or the client) decides to retry
    commands = Redis(
        connection_pool=BlockingConnectionPool.from_url(
            url,
            max_connections=pool_size,
            timeout=command_timeout,
            socket_timeout=command_timeout,
            socket_connect_timeout=command_timeout,
            retry=no_retry,
        )
    )
    # The reader blocks in XREAD for READ_BLOCK_MS; a longer socket timeout detects a hung server.
    reader = Redis.from_url(
        url,
        socket_timeout=READ_BLOCK_MS / 1000 + 3,
        socket_connect_timeout=command_timeout,
        retry=no_retry,
    )
    subscriber = Redis.from_url(
        url, socket_timeout=10, socket_connect_timeout=command_timeout, retry=no_retry
    )
    return commands, reader, subscriber


async def warn_if_evicting(redis: Redis) -> None:
    """Logs a warning when Redis may evict any key: with the highest seq evicted, a stream
    created again could be numbered under cursors already handed out (docs/scaling.md). Best
    effort: a managed Redis may refuse CONFIG."""
    try:
        reply = await redis.config_get("maxmemory-policy")
    except ERRORS:
        return
    policy: object = next(iter(reply.values()), b"")  # bytes: the client does not decode
    if isinstance(policy, bytes):
        policy = policy.decode()
    if isinstance(policy, str) and policy.startswith("allkeys"):
        log.warning(
            "redis maxmemory-policy is %s: it may evict the keys that keep cursors unique;"
            " use noeviction (or a volatile-* policy)",
            policy,
        )


class Commands:
    """Mixed into RedisBackend: `fail_fast` is set by its constructor."""

    fail_fast: FailFast

    async def command(self, call: Callable[[], Awaitable[T]], *, idempotent: bool = False) -> T:
        """Run a command, mapping Redis failures to BusUnavailable.

        An idempotent command gets one immediate retry on a connection error: a pooled connection
        can be stale after Redis restarted. Appends get none, so a lost reply never doubles an event.
        """
        with self.fail_fast.attempt(lambda: BusUnavailable("redis: away, retrying")):
            try:
                return await call()
            except RedisConnectionError as exc:
                if not idempotent:
                    raise BusUnavailable(f"redis: {exc}") from exc
            except ERRORS as exc:
                raise BusUnavailable(f"redis: {exc}") from exc
            try:
                return await call()
            except ERRORS as exc:
                raise BusUnavailable(f"redis: {exc}") from exc
