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


def paired(transport: str, vs: str, windows: int = 4, seconds: float = 6.0) -> dict[str, Any]:
    """fourcast's case `vs` (a key of PAIRED) against its counterpart, served side by side by
    `python -m bench ab` (both at once, on the same core, under the same publishes), at that
    tool's reference load: 1,000 readers at 20,000 deliveries/s, polls 500 at 10 events/s."""
    return {
        "kind": "paired",
        "transport": transport,
        "vs": vs,
        "windows": windows,
        "seconds": seconds,
        "timeout": 150 + windows * seconds * 2,
    }


# Who is measured. Every scenario runs on fourcast and, where it has a counterpart, on both peers
# right after it, so each ratio compares figures taken minutes apart on the same machine.
FOURCAST = {"server": "fourcast", "launch": "python -m app", "auth": "key", "backend": "memory"}
UVICORN = {**FOURCAST, "launch": "uvicorn"}
GUEST = {**FOURCAST, "auth": "guest"}
REDIS = {**FOURCAST, "backend": "redis"}
REDIS_GUEST = {**REDIS, "auth": "guest"}
# The peers have no authentication: their rows are the counterparts of the API-key scenarios.
NCHAN = {"server": "nchan", "launch": "nginx", "auth": "key", "backend": "memory"}
FLOOR = {
    "server": "floor",
    "launch": "uvicorn --loop uvloop --http httptools --ws websockets-sansio",
    "auth": "key",
    "backend": "memory",
}
PEERS = (NCHAN, FLOOR)
VARIANTS = (GUEST, REDIS, REDIS_GUEST, UVICORN)
"""fourcast's other cases, each compared with the API-key row of the same load."""
PAIRED = {
    "guest": ({"auth": "guest"}, {"auth": "key"}),
    "redis": ({"auth": "key", "backend": "redis"}, {"auth": "key"}),
    "redis guest": ({"auth": "guest", "backend": "redis"}, {"auth": "guest"}),
    "nchan": ({"auth": "key"}, {"server": "nchan"}),
    "uvicorn": ({"auth": "key", "launch": "uvicorn"}, {"server": "floor"}),
}
"""The comparisons judged side by side, each (candidate, base): guests against key readers; a
node on Redis against one in memory, with each kind of reader; `python -m app` against Nchan;
plain `uvicorn app.main:app` against the floor app. Rows of the two measured minutes apart move
10-40 % with the machine; side by side, an A/A comparison reads 1.000x."""
REFERENCE_RATE = 20_000
"""The fan-out step the targets quote (deliveries/s to ~1,000 readers)."""


def on(who: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    return {**spec, **who}


def key(spec: dict[str, Any]) -> str:
    """What `--only` matches: kind:transport:subscribers:server:auth:backend:launch."""
    return ":".join(
        str(spec.get(k, ""))
        for k in ("kind", "transport", "subscribers", "server", "auth", "backend", "launch")
    )


def label(spec: dict[str, Any]) -> str:
    if spec["kind"] == "paired":
        return f"paired {spec['transport']}: {spec['vs']} against its counterpart, side by side"
    who = spec.get("server", "fourcast")
    if who == "fourcast":
        who += f" ({spec.get('launch')}, {spec.get('auth')}, {spec.get('backend')})"
    again = f" (round {spec['round']})" if spec.get("round", 1) > 1 else ""
    return f"{spec['kind']} {spec['transport']} {spec.get('subscribers', '')} {who}{again}"


def with_peers(spec: dict[str, Any], peers: bool = True) -> list[dict[str, Any]]:
    """The scenario on fourcast (`python -m app`, API-key readers), then on Nchan and the floor."""
    return [on(FOURCAST, spec)] + ([on(p, spec) for p in PEERS] if peers else [])


def variants(specs: list[dict[str, Any]], *whos: dict[str, str]) -> list[dict[str, Any]]:
    return [on(who, spec) for who in whos for spec in specs]


def full() -> list[dict[str, Any]]:
    """About 14 minutes a round: see bench/README.md for the grid and the time each part takes.
    Each transport's rows run back to back (fourcast, the peers, then fourcast's other cases),
    so every ratio of rows compares figures taken minutes apart; fourcast's cases are also
    compared side by side (`paired`), about 7 minutes once."""
    ws = fanout("websocket", 1000, [20_000], 5.0)
    sse = fanout("sse", 1000, [20_000], 5.0)
    short, long = poll("shortpoll", 500, 10, 10.0), poll("longpoll", 500, 10, 10.0)
    specs = [on(FOURCAST, fanout("websocket", 1000, FULL_STEPS, 5.0))]
    specs += [on(p, ws) for p in PEERS] + variants([ws], *VARIANTS)
    specs += [on(FOURCAST, fanout("sse", 1000, [20_000, 50_000], 5.0))]
    specs += [on(p, sse) for p in PEERS] + variants([sse], *VARIANTS)
    for spec in (short, long):
        specs += with_peers(spec) + variants([spec], *VARIANTS)
    for spec in (idle("websocket", 10_000), idle("sse", 10_000)):
        specs += with_peers(spec) + variants([spec], UVICORN)
    specs += with_peers(publish(32, 10.0))
    specs += [paired(t, vs) for vs in PAIRED for t in ("websocket", "sse", "longpoll", "shortpoll")]
    return specs


def rerun(spec: dict[str, Any]) -> dict[str, Any] | None:
    """What a later round runs of a scenario (None: nothing): its reference load again. A
    fan-out ladder runs its 20k deliveries/s step alone; idle memory and publishing, which
    vary little between runs, and the side-by-side comparisons, each a median of its own
    windows, are measured in the first round only."""
    if spec["kind"] in ("idle", "publish", "paired"):
        return None
    if spec["kind"] == "fanout" and len(spec["targets"]) > 1:
        return {**spec, "targets": [REFERENCE_RATE]}
    return spec


def quick() -> list[dict[str, Any]]:
    """About 3 minutes: every server, reader and launch path at a small scale, short windows."""
    transports = [
        fanout("websocket", 1000, [20_000], 3.0, warmup=0.5),
        fanout("sse", 1000, [20_000], 3.0, warmup=0.5),
        poll("shortpoll", 200, 10, 4.0, warmup=1.0),
        poll("longpoll", 200, 10, 4.0, warmup=1.0),
    ]
    specs = [s for spec in transports for s in with_peers(spec)]
    specs += with_peers(publish(32, 3.0), peers=False)
    specs += variants(transports, GUEST, REDIS, UVICORN)
    return specs


def smoke() -> list[dict[str, Any]]:
    """A tiny end-to-end run for the test suite: one server, every kind of scenario."""
    return [
        on(FOURCAST, s)
        for s in (
            fanout("websocket", 20, [1_000], 1.0, warmup=0.3),
            fanout("sse", 20, [1_000], 1.0, warmup=0.3),
            publish(4, 1.0, warmup=0.3),
            poll("shortpoll", 20, 10, 1.5, warmup=0.3),
            poll("longpoll", 20, 10, 1.5, warmup=0.3),
        )
    ]


def peers_smoke() -> list[dict[str, Any]]:
    """Each peer (Nchan, the floor) on each transport at a tiny count, for the tests."""
    specs = [
        fanout("websocket", 5, [100], 0.3, warmup=0.2),
        fanout("sse", 5, [100], 0.3, warmup=0.2),
        poll("shortpoll", 5, 10, 1.0, warmup=0.2),  # >= one poll interval
        poll("longpoll", 5, 10, 0.5, warmup=0.2),
        publish(2, 0.3, warmup=0.1),
    ]
    return [on(p, s) for p in PEERS for s in specs]


def variants_smoke() -> list[dict[str, Any]]:
    """fourcast's other cases (guest readers, Redis, plain uvicorn) at a tiny count."""
    specs = [
        fanout("websocket", 5, [100], 0.3, warmup=0.2),
        fanout("sse", 5, [100], 0.3, warmup=0.2),
        poll("shortpoll", 5, 10, 1.0, warmup=0.2),  # >= one poll interval
        poll("longpoll", 5, 10, 0.5, warmup=0.2),
    ]
    return variants(specs, GUEST, REDIS_GUEST, UVICORN)


SUITES = {
    "full": full,
    "quick": quick,
    "smoke": smoke,
    "peers-smoke": peers_smoke,
    "variants-smoke": variants_smoke,
}
# The smoke suites share one server between their scenarios to stay short.
SHARED_SERVER = {"smoke", "peers-smoke", "variants-smoke"}
