"""Issue 14's targets, judged on a run's rows; over several rounds, on the median of the rounds.

Each round measures every compared row minutes apart from its counterparts (scenarios.py orders
them so), and a target's value is computed within one round. Over rounds, the verdict is on the
median of those per-round values, and every round's value is kept beside it: one run's drift
(the machine moves a row by 10-40 % between runs) no longer decides a verdict on its own.
"""

from __future__ import annotations

from statistics import median
from typing import Any

from bench.ratios import HEADLINE, ratio
from bench.scenarios import FOURCAST

STREAMS = ("websocket", "sse")
TRANSPORTS = (
    ("fanout", "websocket"),
    ("fanout", "sse"),
    ("poll", "longpoll"),
    ("poll", "shortpoll"),
)
LADDER_TOP = 100_000
"""Deliveries/s of the throughput target, which only the fan-out ladder (several steps) measures."""


NCHAN_LIMITS = {"websocket": 1.0, "sse": 1.0, "longpoll": 1.2, "shortpoll": 0.5}
"""`python -m app`'s limits against Nchan, with API-key readers."""
CASE_LIMITS = {"guest": 1.15, "redis": 1.3, "redis guest": 1.3, "uvicorn": 0.8}
"""The limits of fourcast's other cases against their counterparts (scenarios.PAIRED): guests
within 1.15x of key readers, a node on Redis within 1.3x of one in memory, plain `uvicorn
app.main:app` within 0.8x of the floor app."""


def case_limit(vs: str, transport: str) -> float:
    """The limit of a comparison (a key of scenarios.PAIRED) on one transport."""
    return NCHAN_LIMITS[transport] if vs == "nchan" else CASE_LIMITS[vs]


EDGES = 0.001
"""How far a step's delivery rate, counted over its steady window, may fall short of its offered
rate from events that straddle the window's edges (a step at 100k/s read 99,996/s, no loss)."""


def sustained(row: dict[str, Any]) -> float:
    """The rate a step with no loss showed it sustains: the offered rate when the window counted
    every event but those at its edges, else what the window counted."""
    offered = row.get("target_deliveries_per_s")
    measured = float(row["deliveries_per_s"])
    if offered and measured >= offered * (1 - EDGES):
        return float(offered)
    return measured


def pick(
    rows: list[dict[str, Any]], kind: str, transport: str, **who: Any
) -> dict[str, Any] | None:
    """The reference row of a scenario: fan-out at 20k deliveries/s to ~1,000 readers, the poll
    scenario, the idle scenario; for `who` (server, launch, auth, backend; fourcast's defaults)."""
    want = dict(FOURCAST) if who.get("server", "fourcast") == "fourcast" else {}
    want.update(who)
    for r in rows:
        if r["kind"] != kind or r["transport"] != transport:
            continue
        if any(r.get(k, FOURCAST.get(k)) != v for k, v in want.items()):
            continue
        if kind == "fanout" and (
            r.get("target_deliveries_per_s") != 20_000 or abs(r["subscribers"] - 1000) > 50
        ):
            continue
        return r
    return None


def unjudged(name: str, limit: float, better: str, unit: str) -> dict[str, Any]:
    """A target, not yet judged: `better` is "<=" or ">="."""
    return {
        "target": name,
        "limit": f"{better} {limit:g}",
        "unit": unit,
        "limit_value": limit,
        "better": better,
    }


def verdict(target: dict[str, Any], measured: Any) -> dict[str, Any]:
    """`target` judged on `measured`: PASS/MISS and the margin (how far inside (+) or outside
    (-) the limit, in % of the limit)."""
    limit, better = target["limit_value"], target["better"]
    met = margin = None
    if measured is not None:
        met = measured <= limit if better == "<=" else measured >= limit
        gap = (limit - measured) if better == "<=" else (measured - limit)
        margin = round(100 * gap / limit, 1) if limit else None
    return {**target, "measured": measured, "met": met, "margin_pct": margin}


def paired_target(vs: str, transport: str) -> str:
    """The name of the target a comparison (a key of scenarios.PAIRED) measures."""
    if vs == "nchan":
        return f"python -m app, key readers: {transport} CPU vs Nchan"
    if vs == "uvicorn":
        return f"uvicorn app.main:app vs floor: {transport} CPU"
    if vs == "guest":
        return f"guest readers vs key readers: {transport} CPU"
    auth = "guest" if vs == "redis guest" else "key"
    return f"Redis vs memory ({auth} readers): {transport} CPU per node"


def over_rounds(
    rows: list[dict[str, Any]], paired: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The targets of a run: each target's median over the rounds that measured it, with every
    round's value in `rounds` (None where a round did not). A target also compared side by side
    (`paired`, bench/paired.py) is judged on that comparison's median (`how`: "side by side");
    its rows' ratios stay in `rounds`, for reference."""
    judged = _over_rounds(rows)
    named = {t["target"]: t for t in judged}
    for result in paired or ():
        name = paired_target(result["vs"], result["transport"])
        limit = case_limit(result["vs"], result["transport"])
        rows_judged = named.get(name) or unjudged(name, limit, "<=", "x")
        side = verdict(rows_judged, result["ratio"])
        side["rounds"] = rows_judged.get("rounds", [rows_judged.get("measured")])
        side["how"] = "side by side"
        side["rows_measured"] = rows_judged.get("measured")
        side["windows"] = result["windows"]
        if name in named:
            judged[judged.index(named[name])] = side
        else:
            judged.append(side)
    return judged


def _over_rounds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    numbers = sorted({r.get("round", 1) for r in rows})
    if len(numbers) <= 1:
        return targets(rows)
    per_round = [targets([r for r in rows if r.get("round", 1) == n]) for n in numbers]
    # Matched by name: a round may lack a target another has (a scenario that failed there).
    named = [{t["target"]: t for t in each} for each in per_round]
    first: dict[str, dict[str, Any]] = {}
    for each in per_round:
        for t in each:
            first.setdefault(t["target"], t)
    out = []
    for name, target in first.items():
        values = [each[name]["measured"] if name in each else None for each in named]
        found = [v for v in values if v is not None]
        judged = verdict(target, round(median(found), 3) if found else None)
        judged["rounds"] = values
        out.append(judged)
    return out


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 14's targets, each with what these rows measured (None: not measured)."""
    out: list[dict[str, Any]] = []

    def add(name: str, measured: Any, limit: float, better: str, unit: str) -> None:
        out.append(verdict(unjudged(name, limit, better, unit), measured))

    def head(r: dict[str, Any] | None) -> Any:
        return r.get(HEADLINE[r["kind"]]) if r else None

    def ratio_of(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
        return ratio(head(a), head(b)) if a and b else None

    def idle(**who: Any) -> list[tuple[str, dict[str, Any] | None]]:
        return [(f"idle {t}", pick(rows, "idle", t, **who)) for t in STREAMS]

    def each(**who: Any) -> list[tuple[str, dict[str, Any] | None]]:
        return [(t, pick(rows, k, t, **who)) for k, t in TRANSPORTS]

    # `python -m app`, API-key readers, against Nchan.
    nchan = {t: r for t, r in each(server="nchan") + idle(server="nchan")}
    floor = {t: r for t, r in each(server="floor") + idle(server="floor")}
    base = dict(each() + idle())
    for t, limit in NCHAN_LIMITS.items():
        add(paired_target("nchan", t), ratio_of(base[t], nchan[t]), limit, "<=", "x")
    for t in STREAMS:
        add(f"python -m app: idle KiB per {t} connection", head(base[f"idle {t}"]), 12, "<=", "KiB")
    # Signed-in readers within 1.15x of the API-key figures.
    guest = dict(each(auth="guest"))
    for _k, t in TRANSPORTS:
        ratio_now = ratio_of(guest[t], base[t])
        add(paired_target("guest", t), ratio_now, CASE_LIMITS["guest"], "<=", "x")
    # Redis within 1.3x of the in-memory figures, per node (key readers; guests where measured).
    for vs, auth in (("redis", "key"), ("redis guest", "guest")):
        redis = dict(each(backend="redis", auth=auth))
        mem = base if auth == "key" else guest
        for _k, t in TRANSPORTS:
            if auth == "guest" and redis[t] is None:
                continue
            ratio_now = ratio_of(redis[t], mem[t])
            add(paired_target(vs, t), ratio_now, CASE_LIMITS[vs], "<=", "x")
    # Plain uvicorn, no flags: <= 0.8x the floor.
    uv = dict(each(launch="uvicorn") + idle(launch="uvicorn"))
    for t, r in uv.items():
        name = f"uvicorn app.main:app vs floor: {t} KiB" if t.startswith("idle") else None
        name = name or paired_target("uvicorn", t)
        add(name, ratio_of(r, floor[t]), CASE_LIMITS["uvicorn"], "<=", "x")
    # Still met.
    ws = [
        r
        for r in rows
        if r["kind"] == "fanout"
        and r["transport"] == "websocket"
        and all(r.get(k, v) == v for k, v in FOURCAST.items())
        and abs(r["subscribers"] - 1000) <= 50
    ]
    passing = [sustained(r) for r in ws if r["ok"] and (r.get("p99_ms") or 1e9) < 100]
    laddered = len(ws) > 1  # a ladder of steps; a single step cannot measure this target
    add(
        "WebSocket deliveries/s to 1,000 readers, p99 < 100 ms, no loss",
        max(passing, default=0.0) if laddered else None,
        LADDER_TOP,
        ">=",
        "/s",
    )
    for t in STREAMS:
        r = base[t]
        add(f"{t} p99 at 20k/s, 1,000 readers", r and r["p99_ms"], 30, "<=", "ms")
    pub = next(
        (r for r in rows if r["kind"] == "publish" and r.get("server", "fourcast") == "fourcast"),
        None,
    )
    add(
        "durable REST publishes/s, 32 concurrent", pub and pub["deliveries_per_s"], 5000, ">=", "/s"
    )
    return out
