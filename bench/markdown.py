"""A run as Markdown: its targets, then every row."""

from __future__ import annotations

from typing import Any

from bench.charts import CHARTS


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
    later = data.get("later_rounds") or []
    every = [*data["results"], *later]
    contended = [r for r in every if r.get("contended")]
    if contended:
        lines += [
            f"**CONTENDED RUN: {len(contended)} of {len(every)} windows had other work "
            "on the machine (other CPU % > 15). Its latency and throughput figures, and its "
            "ratios, are not results; run again on a quiet machine.**",
            "",
        ]
    rounds = max((len(t.get("rounds", ())) for t in data["targets"]), default=0)
    lines += [
        "## Targets (issue 14)",
        "",
        *(
            [
                f"Each target is judged on its median over {rounds} rounds; `rounds` gives "
                "each round's value, every ratio taken within one round.",
                "",
            ]
            if rounds
            else []
        ),
        *(
            [
                "A target measured *side by side* is judged on `python -m bench ab`'s median "
                "(both cases served at once, under the same publishes: see the section below); "
                "its `rounds` give the ratios of its rows, taken minutes apart, for reference.",
                "",
            ]
            if data.get("paired")
            else []
        ),
        "| target | measured | rounds | limit | result | margin |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for t in data["targets"]:
        verdict = "not measured" if t["met"] is None else ("PASS" if t["met"] else "**MISS**")
        margin = "" if t.get("margin_pct") is None else f"{t['margin_pct']:+.1f} %"
        each = ", ".join(_fmt(v, 2) for v in t.get("rounds", ()))
        how = " side by side" if t.get("how") else ""
        lines.append(
            f"| {t['target']} | {_fmt(t['measured'], 2)} {t['unit']}{how} | {each} | "
            f"{t['limit']} {t['unit']} | {verdict} | {margin} |"
        )
    lines += _paired(data.get("paired") or [])
    lines += ["", "## Results", "", *_table(data["results"])]
    for n in sorted({r["round"] for r in later}):
        lines += ["", f"## Round {n}: the reference loads again", ""]
        lines += _table([r for r in later if r["round"] == n])
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


def _table(rows: list[dict[str, Any]]) -> list[str]:
    """One line a row."""
    lines = [
        "| server | launch | auth | backend | transport | scenario | subs | deliveries/s | p50 ms "
        "| p99 ms | loss | dup | reorder | server CPU % | CPU-ms/1k | cpu basis | process "
        "| vs Nchan | vs floor | kernel % | RSS MB | loadgen CPU % | client-bound "
        "| other CPU % | ok |",
        "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:"
        "|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
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
    return lines


def _paired(results: list[dict[str, Any]]) -> list[str]:
    """The side-by-side comparisons: each window's CPU-ms per 1,000 deliveries, both sides."""
    if not results:
        return []
    lines = [
        "",
        "## Side by side (`python -m bench ab`)",
        "",
        "| transport | case | vs | ratio (median) | windows | case CPU-ms/1k | counterpart |",
        "|---|---|---|---:|---|---|---|",
    ]
    for r in results:
        case, base = (
            ", ".join(f"{k} {v}" for k, v in who.items()) for who in (r["candidate"], r["base"])
        )
        lines.append(
            f"| {r['transport']} | {case} | {base} | {r['ratio']:.3f}x | "
            f"{', '.join(f'{w:.3f}' for w in r['windows'])} | "
            f"{', '.join(_fmt(c, 2) for c in r['candidate_cpu_ms_per_1000'])} | "
            f"{', '.join(_fmt(c, 2) for c in r['base_cpu_ms_per_1000'])} |"
        )
    return lines
