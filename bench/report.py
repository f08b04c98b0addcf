"""Results as JSON, a Markdown table and PNG charts; the newest also as `latest.*`."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import orjson

from bench.procstat import ROOT

RESULTS = ROOT / "bench" / "results"
CHARTS = ("fanout_cpu", "fanout_p99", "summary")


def _find(rows: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def _fanout_at(
    rows: list[dict[str, Any]], transport: str, subs: int, target: int
) -> dict[str, Any] | None:
    found = [
        r
        for r in _find(rows, kind="fanout", transport=transport, target_deliveries_per_s=target)
        if abs(r["subscribers"] - subs) <= subs * 0.05
    ]
    return found[0] if found else None


HEADLINE = {"fanout": "cpu_ms_per_1000", "poll": "cpu_ms_per_1000", "idle": "kib_per_conn"}
"""The figure a row is judged by (lower is better); publish rows by publishes/s (higher)."""
RATIO_FIELDS = ("cpu_ms_per_1000", "kib_per_conn", "p99_ms", "deliveries_per_s")


def _same_load(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two rows measured under the same load (subscribers within 5 %, same step)."""
    return (
        a["kind"] == b["kind"]
        and a["transport"] == b["transport"]
        and a.get("target_deliveries_per_s") == b.get("target_deliveries_per_s")
        and abs(a.get("subscribers", 0) - b.get("subscribers", 0))
        <= 0.05 * max(a.get("subscribers", 0), 1)
    )


def _ratio(a: Any, b: Any) -> float | None:
    if a is None or not b:
        return None
    return round(a / b, 3)


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Give every fourcast row its figures as ratios to the same load on Nchan and on the floor in
    this run: `vs_nchan` / `vs_floor` for the headline figure (CPU-ms per 1,000 deliveries; KiB
    per idle connection; publishes/s), and `ratios` for each figure both sides have."""
    for r in rows:
        if r.get("server", "fourcast") != "fourcast":
            continue
        r["ratios"] = {}
        for peer in ("nchan", "floor"):
            match = next(
                (p for p in rows if p.get("server") == peer and _same_load(r, p)),
                None,
            )
            head = HEADLINE.get(r["kind"], "deliveries_per_s")
            r[f"vs_{peer}"] = _ratio(r.get(head), match.get(head)) if match else None
            if match:
                r["ratios"][peer] = {
                    k: _ratio(r.get(k), match.get(k))
                    for k in RATIO_FIELDS
                    if r.get(k) is not None and match.get(k) is not None
                }


def pick(
    rows: list[dict[str, Any]], kind: str, transport: str, **who: Any
) -> dict[str, Any] | None:
    """The reference row of a scenario: fan-out at 20k deliveries/s to ~1,000 readers, the poll
    scenario, the idle scenario; for `who` (server, launch, auth, backend; fourcast's defaults)."""
    want = {"server": "fourcast", "launch": "python -m app", "auth": "key", "backend": "memory"}
    if who.get("server", "fourcast") != "fourcast":
        want = {}
    want.update(who)
    for r in rows:
        if r["kind"] != kind or r["transport"] != transport:
            continue
        if any(r.get(k, FOURCAST_DEFAULTS.get(k)) != v for k, v in want.items()):
            continue
        if kind == "fanout" and (
            r.get("target_deliveries_per_s") != 20_000 or abs(r["subscribers"] - 1000) > 50
        ):
            continue
        return r
    return None


FOURCAST_DEFAULTS = {
    "server": "fourcast",
    "launch": "python -m app",
    "auth": "key",
    "backend": "memory",
}
STREAMS = ("websocket", "sse")
TRANSPORTS = (
    ("fanout", "websocket"),
    ("fanout", "sse"),
    ("poll", "longpoll"),
    ("poll", "shortpoll"),
)


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 14's targets, each with what this run measured (None: not measured in this run),
    PASS/MISS and the margin (how far inside (+) or outside (-) the limit, in % of the limit)."""
    out: list[dict[str, Any]] = []

    def add(name: str, measured: Any, limit: float, better: str, unit: str) -> None:
        met = margin = None
        if measured is not None:
            met = measured <= limit if better == "<=" else measured >= limit
            gap = (limit - measured) if better == "<=" else (measured - limit)
            margin = round(100 * gap / limit, 1) if limit else None
        out.append(
            {
                "target": name,
                "measured": measured,
                "limit": f"{better} {limit:g}",
                "unit": unit,
                "met": met,
                "margin_pct": margin,
            }
        )

    def head(r: dict[str, Any] | None) -> Any:
        return r.get(HEADLINE[r["kind"]]) if r else None

    def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
        return _ratio(head(a), head(b)) if a and b else None

    def idle(**who: Any) -> list[tuple[str, dict[str, Any] | None]]:
        return [(f"idle {t}", pick(rows, "idle", t, **who)) for t in STREAMS]

    def each(**who: Any) -> list[tuple[str, dict[str, Any] | None]]:
        return [(t, pick(rows, k, t, **who)) for k, t in TRANSPORTS]

    # `python -m app`, API-key readers, against Nchan.
    nchan = {t: r for t, r in each(server="nchan") + idle(server="nchan")}
    floor = {t: r for t, r in each(server="floor") + idle(server="floor")}
    base = dict(each() + idle())
    for t, limit in (("websocket", 1.0), ("sse", 1.0), ("longpoll", 1.2), ("shortpoll", 0.5)):
        add(
            f"python -m app, key readers: {t} CPU vs Nchan",
            ratio(base[t], nchan[t]),
            limit,
            "<=",
            "x",
        )
    for t in STREAMS:
        add(f"python -m app: idle KiB per {t} connection", head(base[f"idle {t}"]), 12, "<=", "KiB")
    # Signed-in readers within 1.15x of the API-key figures.
    guest = dict(each(auth="guest"))
    for t, _ in ((t, k) for k, t in TRANSPORTS):
        add(f"guest readers vs key readers: {t} CPU", ratio(guest[t], base[t]), 1.15, "<=", "x")
    # Redis within 1.3x of the in-memory figures, per node (key readers; guests where measured).
    for auth in ("key", "guest"):
        redis = dict(each(backend="redis", auth=auth))
        mem = base if auth == "key" else guest
        for _k, t in TRANSPORTS:
            if auth == "guest" and redis[t] is None:
                continue
            add(
                f"Redis vs memory ({auth} readers): {t} CPU per node",
                ratio(redis[t], mem[t]),
                1.3,
                "<=",
                "x",
            )
    # Plain uvicorn, no flags: <= 0.8x the floor.
    uv = dict(each(launch="uvicorn") + idle(launch="uvicorn"))
    for t, r in uv.items():
        unit = "KiB" if t.startswith("idle") else "CPU"
        add(f"uvicorn app.main:app vs floor: {t} {unit}", ratio(r, floor[t]), 0.8, "<=", "x")
    # Still met.
    ws = [
        r
        for r in rows
        if r["kind"] == "fanout"
        and r["transport"] == "websocket"
        and r.get("server", "fourcast") == "fourcast"
        and r.get("launch", "python -m app") == "python -m app"
        and r.get("auth", "key") == "key"
        and r.get("backend", "memory") == "memory"
        and abs(r["subscribers"] - 1000) <= 50
    ]
    passing = [r["deliveries_per_s"] for r in ws if r["ok"] and (r.get("p99_ms") or 1e9) < 100]
    add(
        "WebSocket deliveries/s to 1,000 readers, p99 < 100 ms, no loss",
        max(passing, default=0.0) if ws else None,
        100_000,
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


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def markdown(data: dict[str, Any], prefix: str = "") -> str:
    m, v = data["machine"], data["versions"]
    lines = [
        f"# fourcast benchmark ({data['suite']}), {data['created']}",
        "",
        f"Machine: {m['cpu_model']}, {m['cores']} cores, kernel {m['kernel']}, {m['memory_mb']} MB. "
        f"Server pinned to core {data['settings']['server_core']}, load generator to core "
        f"{data['settings']['loadgen_core']}. Run took {data['duration_s']} s.",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "Server CPU (`CPU-ms/1k`, per 1,000 deliveries) is the pessimistic figure (`cpu basis`, "
        "see bench/README.md): the highest of the server's processes plus its core's kernel "
        "threads (`process+kthreads`), the pinned core's whole busy time (`core`, only on a quiet "
        "machine) and the whole step with warm-up and drain (`step`); `process` is the server's "
        "processes alone over the steady window; `kernel %`: their stime share (system calls, "
        "loopback TCP). `vs Nchan` / `vs floor`: the row's headline figure (CPU-ms/1k; KiB per "
        "idle connection; publishes/s) over the same load on that peer in this run. "
        "`client-bound` means the load generator used ≥ 90 % of its core; `other CPU %` is what "
        "other processes on the machine used in the window (share of one core). `ok`: no loss, "
        "duplicates or reordering, no backlog, p99 ≤ 100 ms.",
        "",
    ]
    contended = [r for r in data["results"] if r.get("contended")]
    if contended:
        lines += [
            f"**CONTENDED RUN: {len(contended)} of {len(data['results'])} windows had other work "
            "on the machine (other CPU % > 15). Its latency and throughput figures, and its "
            "ratios, are not results; run again on a quiet machine.**",
            "",
        ]
    lines += [
        "## Targets (issue 14)",
        "",
        "| target | measured | limit | result | margin |",
        "|---|---:|---:|---|---:|",
    ]
    for t in data["targets"]:
        verdict = "not measured" if t["met"] is None else ("PASS" if t["met"] else "**MISS**")
        margin = "" if t.get("margin_pct") is None else f"{t['margin_pct']:+.1f} %"
        lines.append(
            f"| {t['target']} | {_fmt(t['measured'], 2)} {t['unit']} | {t['limit']} {t['unit']} | "
            f"{verdict} | {margin} |"
        )
    lines += [
        "",
        "## Results",
        "",
        "| server | launch | auth | backend | transport | scenario | subs | deliveries/s | p50 ms "
        "| p99 ms | loss | dup | reorder | server CPU % | CPU-ms/1k | cpu basis | process "
        "| vs Nchan | vs floor | kernel % | RSS MB | loadgen CPU % | client-bound "
        "| other CPU % | ok |",
        "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:"
        "|---:|---:|---:|---|---:|---|",
    ]
    for r in data["results"]:
        lines.append(
            "| "
            + " | ".join(
                _fmt(x, 2) if isinstance(x, float) and x < 10 else _fmt(x)
                for x in (
                    r.get("server", "fourcast"),
                    r.get("launch"),
                    r.get("auth"),
                    r.get("backend"),
                    r["transport"],
                    r["scenario"],
                    r.get("subscribers"),
                    r.get("deliveries_per_s"),
                    r.get("p50_ms"),
                    r.get("p99_ms"),
                    r.get("loss"),
                    r.get("dup"),
                    r.get("reorder"),
                    r.get("server_cpu_pct"),
                    r.get("cpu_ms_per_1000"),
                    r.get("cpu_basis"),
                    r.get("cpu_ms_per_1000_process"),
                    r.get("vs_nchan"),
                    r.get("vs_floor"),
                    r.get("server_kernel_pct"),
                    r.get("rss_mb"),
                    r.get("loadgen_cpu_pct"),
                    r.get("client_bound"),
                    r.get("other_cpu_pct"),
                    r.get("ok"),
                )
            )
            + " |"
        )
    idle = [r for r in data["results"] if r["kind"] == "idle"]
    if idle:
        lines += [
            "",
            "## Idle connections",
            "",
            "| server | launch | transport | held | KiB/conn | vs Nchan | vs floor | RSS MB "
            "| connect s | idle CPU % |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in idle:
            lines.append(
                f"| {r.get('server', 'fourcast')} | {r.get('launch', '')} | {r['transport']} | "
                f"{_fmt(r['held'])} of {_fmt(r['requested'])} | {_fmt(r['kib_per_conn'])} | "
                f"{_fmt(r.get('vs_nchan'), 2)} | {_fmt(r.get('vs_floor'), 2)} |"
                f" {_fmt(r['rss_mb'])} | {_fmt(r['connect_s'])} | {_fmt(r['idle_server_cpu_pct'])} |"
            )
    if data.get("errors"):
        lines += ["", "## Errors", ""] + [f"- {e}" for e in data["errors"]]
    charts = [c for c in CHARTS if data.get("charts", {}).get(c)]
    if charts:
        lines += ["", "## Charts", ""] + [f"![{c}]({prefix}{c}.png)" for c in charts]
    settings = data["settings"]["server"]
    lines += [
        "",
        "Server settings: " + ", ".join(f"`{k}={val}`" for k, val in settings.items()),
        "",
    ]
    return "\n".join(lines)


def charts(data: dict[str, Any], out: Path) -> dict[str, bool]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    made: dict[str, bool] = {}
    rows = data["results"]
    fan = [r for r in rows if r["kind"] == "fanout"]
    series: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in fan:
        who = r.get("server", "fourcast")
        if who == "fourcast" and (r.get("launch"), r.get("auth"), r.get("backend")) != (
            "python -m app",
            "key",
            "memory",
        ):
            who += f" {r.get('launch')} {r.get('auth')} {r.get('backend')}"
        series.setdefault((f"{who} {r['transport']}", r["subscribers"]), []).append(r)
    for name, key, ylabel, lines in (
        (
            "fanout_cpu",
            "cpu_ms_per_1000",
            "server CPU-ms per 1,000 deliveries",
            ((10, "WS target"), (12, "SSE target")),
        ),
        ("fanout_p99", "p99_ms", "p99 latency (ms)", ((30, "30 ms"), (100, "100 ms"))),
    ):
        if not series:
            break
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for (transport, subs), rs in sorted(series.items()):
            pts = [(r["deliveries_per_s"], r[key]) for r in rs if r.get(key) is not None]
            if pts:
                style = "-o" if transport.endswith("websocket") else "--s"
                ax.plot(*zip(*pts, strict=True), style, label=f"{transport} {subs} subs")
        for y, label in lines:
            ax.axhline(y, color="grey", linewidth=0.8, linestyle=":")
            ax.text(ax.get_xlim()[0], y, f" {label}", va="bottom", fontsize=8, color="grey")
        ax.set_xlabel("deliveries/s (measured)")
        ax.set_ylabel(ylabel)
        if key == "p99_ms":
            ax.set_yscale("log")
        ax.set_title(f"Fan-out on one channel: {ylabel}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=100)
        plt.close(fig)
        made[name] = True
    bars = []
    rows = [r for r in rows if all(r.get(k, v) == v for k, v in FOURCAST_DEFAULTS.items())]
    for t in ("websocket", "sse"):
        r = _fanout_at(rows, t, 1000, 20_000)
        if r:
            bars.append(
                (f"{t}\n1k subs 20k/s", r["cpu_ms_per_1000"], 10 if t == "websocket" else 12)
            )
    for t, limit in (("longpoll", 40), ("shortpoll", 25)):
        r = _find(rows, kind="poll", transport=t)
        if r:
            bars.append((f"{t}\n{r[0]['subscribers']} pollers", r[0]["cpu_ms_per_1000"], limit))
    r = _find(rows, kind="publish")
    if r:
        bars.append(("REST publish\nx32", r[0]["cpu_ms_per_1000"], None))
    bars = [b for b in bars if b[1] is not None]
    if bars:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        xs = range(len(bars))
        ax.bar(xs, [b[1] for b in bars], color="#4a7fb5", label="measured")
        for x, b in zip(xs, bars, strict=True):
            if b[2] is not None:
                ax.plot([x - 0.4, x + 0.4], [b[2], b[2]], color="#c0392b", linewidth=2)
            ax.text(x, b[1], f"{b[1]:.1f}", ha="center", va="bottom", fontsize=9)
        ax.plot([], [], color="#c0392b", linewidth=2, label="target")
        ax.set_xticks(list(xs), [b[0] for b in bars], fontsize=8)
        ax.set_ylabel("server CPU-ms per 1,000 deliveries (publishes for REST)")
        ax.set_title("Server CPU cost per delivery (lower is better)")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "summary.png", dpi=100)
        plt.close(fig)
        made["summary"] = True
    return made


def write(data: dict[str, Any], results_dir: Path | None = None, *, latest: bool = True) -> Path:
    """Write `<results_dir>/<timestamp>/results.{json,md}` + charts, and `latest.*` beside them."""
    base = Path(results_dir) if results_dir is not None else RESULTS
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = base / f"{stamp}-{data['suite']}"
    out.mkdir(parents=True, exist_ok=True)
    data["charts"] = charts(data, out)
    (out / "results.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    (out / "results.md").write_text(markdown(data))
    if latest:
        (base / "latest.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        (base / "latest.md").write_text(markdown(data, prefix="latest_"))
        for c in CHARTS:
            src = out / f"{c}.png"
            if src.exists():
                shutil.copyfile(src, base / f"latest_{c}.png")
    return out
