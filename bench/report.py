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


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, each with what this run measured (None: not measured in this suite)."""
    out: list[dict[str, Any]] = []

    def add(name: str, measured: Any, target: float, better: str, unit: str) -> None:
        met = None
        if measured is not None:
            met = measured <= target if better == "<=" else measured >= target
        out.append(
            {
                "target": name,
                "measured": measured,
                "limit": f"{better} {target:g}",
                "unit": unit,
                "met": met,
            }
        )

    for transport, limit in (("websocket", 10), ("sse", 12)):
        r = _fanout_at(rows, transport, 1000, 20_000)
        add(
            f"{transport} CPU, 1,000 subs at 20k/s",
            r and r["cpu_ms_per_1000"],
            limit,
            "<=",
            "ms/1k",
        )
    for transport, limit in (("longpoll", 40), ("shortpoll", 25)):
        r = _find(rows, kind="poll", transport=transport)
        add(
            f"{transport} CPU, pollers at 10 ev/s",
            r[0]["cpu_ms_per_1000"] if r else None,
            limit,
            "<=",
            "ms/1k",
        )
    for transport in ("websocket", "sse"):
        r = _find(rows, kind="idle", transport=transport)
        add(
            f"{transport} idle memory per connection",
            r[0]["kib_per_conn"] if r else None,
            20,
            "<=",
            "KiB",
        )
    ws = [
        r
        for r in _find(rows, kind="fanout", transport="websocket", ok=True)
        if abs(r["subscribers"] - 1000) <= 50
    ]
    tried = [
        r
        for r in _find(rows, kind="fanout", transport="websocket")
        if abs(r["subscribers"] - 1000) <= 50
    ]
    add(
        "websocket max deliveries/s, 1,000 subs, p99<100ms, no loss",
        max((r["deliveries_per_s"] for r in ws), default=0.0 if tried else None),
        50_000,
        ">=",
        "/s",
    )
    for transport in ("websocket", "sse"):
        r = _fanout_at(rows, transport, 1000, 20_000)
        add(f"{transport} p99 at 20k/s, 1,000 subs", r and r["p99_ms"], 30, "<=", "ms")
    r = _find(rows, kind="publish")
    add(
        "REST publishes/s, 32 concurrent", r[0]["deliveries_per_s"] if r else None, 3000, ">=", "/s"
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
        "Server CPU is utime+stime of the server process over each measured window (`kernel %`: "
        "the stime share, system calls and loopback TCP); "
        "`client-bound` means the load generator used ≥ 90 % of its core; `other CPU %` is what other "
        "processes on the machine used in the window (share of one core): where it is high, latency "
        "and throughput are disturbed, CPU-ms per delivery less so. `ok`: no loss, duplicates or "
        "reordering, no backlog, p99 ≤ 100 ms.",
        "",
        "## Targets (issue 5)",
        "",
        "| target | measured | limit | met |",
        "|---|---:|---:|---|",
    ]
    for t in data["targets"]:
        lines.append(
            f"| {t['target']} | {_fmt(t['measured'])} {t['unit']} | {t['limit']} {t['unit']} | "
            f"{_fmt(t['met']) if t['met'] is not None else 'not measured'} |"
        )
    lines += [
        "",
        "## Results",
        "",
        "| transport | scenario | subs | deliveries/s | p50 ms | p99 ms | loss | dup | reorder "
        "| server CPU % | CPU-ms/1k | kernel % | RSS MB | loadgen CPU % | client-bound "
        "| other CPU % | ok |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in data["results"]:
        lines.append(
            "| "
            + " | ".join(
                _fmt(x)
                for x in (
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
            "| transport | held | KiB/conn | RSS MB | connect s | idle CPU % |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in idle:
            lines.append(
                f"| {r['transport']} | {_fmt(r['held'])} of {_fmt(r['requested'])} | {_fmt(r['kib_per_conn'])} | "
                f"{_fmt(r['rss_mb'])} | {_fmt(r['connect_s'])} | {_fmt(r['idle_server_cpu_pct'])} |"
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
        series.setdefault((r["transport"], r["subscribers"]), []).append(r)
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
                style = "-o" if transport == "websocket" else "--s"
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
