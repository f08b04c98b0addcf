"""`python -m bench taskclock`: a server's exact CPU time per 1,000 fan-out deliveries.

The suite's CPU figures come from `/proc` (tick-sampled) and add kernel threads and the core's
interrupt time, which is right for a headline and too coarse to tell two builds apart by a few
per cent. This runs one fan-out step on one server and has `perf stat -e task-clock` (the
scheduler's own run time, in nanoseconds) watch the server's processes over a window inside the
step, so back-to-back runs of two revisions, or of fourcast and Nchan, differ by about 3 %.
Needs `perf` (Debian's `linux-perf`).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import scenarios
from bench.runner import run_loadgen
from bench.server import export_head, make_server

WINDOW = 5.0
STEP = 8.0
"""Seconds of the measured step; the window sits inside it, after connecting and warming up."""


def window_task_clock(pid: int, delay: float) -> float:
    """The task-clock milliseconds of `pid` and its children over WINDOW seconds from `delay`."""
    time.sleep(delay)
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    pids = ",".join([str(pid), *children.stdout.split()])
    stat = subprocess.run(
        ["perf", "stat", "-x,", "-e", "task-clock", "-p", pids, "--", "sleep", str(WINDOW)],
        capture_output=True,
        text=True,
    )
    for line in stat.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] == "task-clock":
            return float(fields[0])
    raise RuntimeError(f"perf stat gave no task-clock: {stat.stderr.strip()}")


def measure(server_kind: str, source: Path | None, transport: str, rate: int, delay: float) -> str:
    spec = scenarios.fanout(transport, 1000, [rate], STEP, warmup=1.0)
    spec["server"] = server_kind
    common: dict[str, object] = {"core": 0}
    if server_kind == "fourcast":
        common["source"] = source
    server = make_server(spec, **common).start()
    clock: list[float] = []
    watcher = threading.Thread(target=lambda: clock.append(window_task_clock(server.pid, delay)))
    watcher.start()
    try:
        row = run_loadgen(spec, server, 1)[-1]
    finally:
        watcher.join()
        server.stop()
    delivered = float(row["deliveries_per_s"]) * WINDOW / 1000
    return (
        f"{server_kind} {transport} at {rate}/s: {clock[0] / delivered:.2f} task-clock ms per"
        f" 1,000 deliveries (the suite's figure for the step: {row['cpu_ms_per_1000']})"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench taskclock", description=__doc__)
    parser.add_argument("--server", choices=("fourcast", "nchan", "floor"), default="fourcast")
    parser.add_argument("--source", default="worktree", help="worktree, or a git revision")
    parser.add_argument("--transport", choices=("websocket", "sse"), default="websocket")
    parser.add_argument("--rate", type=int, default=20_000, help="deliveries/s to 1,000 readers")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--delay", type=float, default=7.0, help="seconds before the window")
    args = parser.parse_args(argv)
    if shutil.which("perf") is None:
        sys.exit("python -m bench taskclock needs perf: apt-get install linux-perf")
    source = None if args.source == "worktree" else export_head(args.source)
    for _ in range(args.repeat):
        print(measure(args.server, source, args.transport, args.rate, args.delay), flush=True)
