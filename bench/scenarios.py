"""The suites: which scenarios run, at what scale, for how long (everything bounded)."""

from __future__ import annotations

from typing import Any

# Fan-out steps, in deliveries/s; the publish rate of a step is this divided by the subscribers.
FULL_STEPS = [5_000, 10_000, 20_000, 35_000, 50_000, 70_000, 100_000, 140_000]


def fanout(
    transport: str,
    n: int,
    steps: list[int],
    step_s: float,
    warmup: float = 1.0,
    always_to: int = 20_000,
) -> dict[str, Any]:
    timeout = 120 + len(steps) * (step_s + warmup + 5) + n / 50
    return {
        "kind": "fanout",
        "transport": transport,
        "subscribers": n,
        "targets": steps,
        "step_seconds": step_s,
        "warmup": warmup,
        "drain": 3.0,
        "always_to": always_to,
        "timeout": timeout,
        "prewarm": 1.0 if step_s >= 2 else 0.3,
    }


def idle(transport: str, n: int) -> dict[str, Any]:
    return {"kind": "idle", "transport": transport, "subscribers": n, "timeout": 300}


def publish(publishers: int, seconds: float, warmup: float = 1.0) -> dict[str, Any]:
    return {
        "kind": "publish",
        "transport": "rest",
        "publishers": publishers,
        "seconds": seconds,
        "warmup": warmup,
        "timeout": 60 + seconds,
    }


def poll(
    transport: str, n: int, rate: float, seconds: float, warmup: float = 2.0
) -> dict[str, Any]:
    return {
        "kind": "poll",
        "transport": transport,
        "subscribers": n,
        "rate": rate,
        "seconds": seconds,
        "warmup": warmup,
        "timeout": 90 + seconds,
    }


def full() -> list[dict[str, Any]]:
    specs = [fanout(t, n, FULL_STEPS, 5.0) for t in ("websocket", "sse") for n in (100, 1000, 5000)]
    specs += [idle("websocket", 10_000), idle("sse", 10_000)]
    specs += [publish(32, 10.0)]
    specs += [poll("shortpoll", 500, 10, 15.0), poll("longpoll", 500, 10, 15.0)]
    return specs


def quick() -> list[dict[str, Any]]:
    return [
        fanout("websocket", 1000, [20_000, 50_000], 4.0),
        fanout("sse", 1000, [20_000, 50_000], 4.0),
        publish(32, 5.0),
        poll("shortpoll", 200, 10, 5.0),
        poll("longpoll", 200, 10, 5.0),
    ]


def smoke() -> list[dict[str, Any]]:
    """A tiny end-to-end run for the test suite: one server, every kind of scenario."""
    return [
        fanout("websocket", 20, [1_000], 1.0, warmup=0.3),
        fanout("sse", 20, [1_000], 1.0, warmup=0.3),
        publish(4, 1.0, warmup=0.3),
        poll("shortpoll", 20, 10, 1.5, warmup=0.3),
        poll("longpoll", 20, 10, 1.5, warmup=0.3),
    ]


SUITES = {"full": full, "quick": quick, "smoke": smoke}
# The smoke suite shares one server between its scenarios to stay short.
SHARED_SERVER = {"smoke"}
