"""The run's PNG charts: cost and p99 against the fan-out rate, and cost per transport."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.scenarios import FOURCAST

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
    rows = [r for r in rows if all(r.get(k, v) == v for k, v in FOURCAST.items())]
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
