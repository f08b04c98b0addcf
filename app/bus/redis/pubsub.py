"""Following one Redis pub/sub channel for a node's whole life, through Redis going away.

Two parts of a node listen to pub/sub: the bus's ephemeral events (live.py) and the revocation
watch (app/identity/revocation.py). Both want the same thing: subscribe, hand each message on,
and after any failure wait a little longer each time and subscribe again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

log = logging.getLogger(__name__)

SILENCE = 10.0
"""Seconds a subscription may hear nothing before it pings Redis."""
PONG_WAIT = 5.0
"""Seconds a ping may go unanswered before the connection is taken for gone: a half-open one
(Redis's host crashed, or a NAT forgot the flow) sends no FIN and no RST, and silence alone
would look like a quiet channel for ever."""


async def follow(
    subscriber: Redis,
    channel: str,
    deliver: Callable[[bytes], None],
    *,
    what: str,
    backoff: tuple[float, float],
    ready: Callable[[], Awaitable[None]] | None = None,
    lost: Callable[[], None] | None = None,
) -> None:
    """Hand every message of `channel` to `deliver`, until cancelled.

    `ready` runs each time the subscription is in place, before any message is handed on (to
    catch up on what was missed, or to say the node is listening); `lost` each time it ends.
    After a failure the next attempt waits `backoff[0]` seconds, doubling up to `backoff[1]`."""
    delay = backoff[0]
    while True:
        pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            if ready is not None:
                await ready()
            delay = backoff[0]
            loop = asyncio.get_running_loop()
            heard, pinged = loop.time(), 0.0
            while True:
                message = await pubsub.get_message(timeout=PONG_WAIT)
                now = loop.time()
                if message is not None:
                    heard, pinged = now, 0.0
                    if message["type"] != "pong":
                        deliver(message["data"])
                elif pinged and now - pinged >= PONG_WAIT:
                    raise ConnectionError("Redis did not answer a ping: the connection is gone")
                elif not pinged and now - heard >= SILENCE:
                    await pubsub.ping()
                    pinged = now
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s failed (%s); retrying in %.2fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, backoff[1])
        finally:
            if lost is not None:
                lost()
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py
