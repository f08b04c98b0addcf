"""Setting up a scenario's clients: who the readers are, connecting them (bounded concurrency),
the publisher, and closing them all at the end."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bench.clients.publishers import Pacer, make_publisher
from bench.clients.subscribe import sse_subscribe, ws_subscribe
from bench.clients.target import Target, guest_token
from bench.loadgen.output import log
from bench.track import Tracker

CONNECT_CONCURRENCY = 200


async def gather_bounded(factories: list[Any], limit: int = CONNECT_CONCURRENCY) -> list[Any]:
    """Run coroutine factories with bounded concurrency; failures come back as exceptions."""
    sem = asyncio.Semaphore(limit)

    async def one(f: Any) -> Any:
        async with sem:
            try:
                return await f()
            except Exception as exc:
                return exc

    return await asyncio.gather(*(one(f) for f in factories))


def target(spec: dict[str, Any]) -> Target:
    return Target(
        spec.get("server", "fourcast"),
        spec["port"],
        spec["channel"],
        spec.get("auth", "key"),
        spec["api_key"],
    )


async def readers(spec: dict[str, Any], n: int) -> list[Target]:
    """Who the n readers are: API-key readers share the key; each guest signs in for itself."""
    base = target(spec)
    if base.server != "fourcast" or base.auth != "guest":
        return [base] * n
    tokens = await gather_bounded(
        [lambda i=i: guest_token(spec["port"], f"reader {i}") for i in range(n)],
        limit=20,
    )
    bad = [t for t in tokens if isinstance(t, BaseException)]
    if bad:
        raise RuntimeError(f"{len(bad)} of {n} guests could not sign in, e.g. {bad[0]!r}")
    return [base.with_credential(t) for t in tokens]


async def publisher(spec: dict[str, Any]) -> Pacer:
    return await make_publisher(spec.get("publish_via", "rest"), target(spec), spec["api_key"])


async def connect_subscribers(spec: dict[str, Any], tracker: Tracker, n: int) -> list[Any]:
    who = await readers(spec, n)
    if spec["transport"] == "websocket":
        kind = spec.get("ws_client", "picows")
        factories = [lambda t=t: ws_subscribe(kind, t, tracker) for t in who]
    else:
        factories = [lambda t=t: sse_subscribe(t, tracker) for t in who]
    before = len(tracker.subs)
    results = await gather_bounded(factories)
    held = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        log(f"{len(errors)} of {n} connections failed, e.g. {errors[0]!r}")
        # Subscribers that never connected are not part of any phase.
        alive = {id(c.sub) for c in held}
        tracker.subs = tracker.subs[:before] + [s for s in tracker.subs[before:] if id(s) in alive]
    return held


async def close_all(conns: list[Any]) -> None:
    for c in conns:
        with contextlib.suppress(Exception):
            await c.close()
    await asyncio.sleep(0.2)
