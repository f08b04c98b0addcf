"""One measured window: the server's CPU (three ways), its RSS, the load generator's own CPU and
the deliveries in between."""

from __future__ import annotations

import time
from typing import Any

from bench.procstat import (
    CLK_TCK,
    core_busy_seconds,
    core_irq_seconds,
    cpu_seconds,
    kernel_threads,
    tree,
    tree_rss_kib,
    tree_seconds,
)
from bench.track import Tracker

CLIENT_BOUND = 0.90  # load-generator CPU share of its core that flags a result
CONTENDED = 0.15  # CPU of other processes (share of one core) that flags a window as disturbed
QUIET = 0.02
"""Other processes' CPU (share of one core) up to which the pinned core's busy time is taken as
the server's: any more, and that figure may carry their work (they may run on its core)."""


def machine_busy_seconds() -> float:
    """CPU time spent by everything on the machine (all cores), from /proc/stat."""
    with open("/proc/stat", "rb") as f:
        fields = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class Window:
    """Server CPU, own CPU and deliveries over one measured interval.

    The server's CPU is measured three ways (bench/README.md, "Which CPU figure"): its processes
    (all threads, and children such as nginx's worker); that plus the kernel threads of its core
    (ksoftirqd, kworkers), where loopback TCP work deferred out of its system calls runs; and, when
    it is pinned, everything its core did. `cpu_ms_per_1000` is the highest that is trustworthy in
    the window: the core's figure on a quiet machine (`QUIET`), else the processes plus kernel
    threads.
    """

    def __init__(self, spec: dict[str, Any], tracker: Tracker | None) -> None:
        self.pids = tree(spec["server_pid"])
        self.core = spec.get("server_core")
        self.kthreads = kernel_threads(self.core) if self.core is not None else []
        self.redis = spec.get("redis_pid")
        self.tracker = tracker
        self.t0 = time.monotonic()
        self.server0, self.kernel0 = tree_seconds(self.pids)
        self.kthread0 = tree_seconds(self.kthreads)[0]
        self.core0 = core_busy_seconds(self.core) if self.core is not None else None
        self.irq0 = core_irq_seconds(self.core) if self.core is not None else None
        self.redis0 = tree_seconds([self.redis])[0] if self.redis else 0.0
        self.own0 = cpu_seconds()
        self.busy0 = machine_busy_seconds()
        self.delivered0 = tracker.delivered if tracker else 0
        self.result: dict[str, Any] = {}

    def end(self, count: int | None = None) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        server, kernel = tree_seconds(self.pids)
        server, kernel = server - self.server0, kernel - self.kernel0
        kthread = tree_seconds(self.kthreads)[0] - self.kthread0
        core = None
        if self.core0 is not None:
            core = (core_busy_seconds(self.core) or 0.0) - self.core0
        irq = None
        if self.irq0 is not None:
            irq = (core_irq_seconds(self.core) or 0.0) - self.irq0
        redis = tree_seconds([self.redis])[0] - self.redis0 if self.redis else None
        own = cpu_seconds() - self.own0
        other = max(
            0.0, machine_busy_seconds() - self.busy0 - server - own - kthread - (redis or 0)
        )
        n = count if count is not None else (self.tracker.delivered - self.delivered0)  # type: ignore[union-attr]
        contended = wall > 0 and other / wall > CONTENDED
        with_kthreads = server + kthread
        # On a quiet machine the pinned core did nothing but serve: its whole busy time is the
        # cost (with Redis, redis-server may share it, so there the processes are the figure).
        pessimistic = with_kthreads
        quiet = wall > 0 and other / wall <= QUIET
        if core is not None and quiet and self.redis is None:
            pessimistic = max(pessimistic, core)

        def per_1k(seconds: float | None) -> float | None:
            return round(seconds * 1000 / (n / 1000), 2) if n and seconds is not None else None

        self.result = {
            "window_s": round(wall, 3),
            "deliveries": n,
            "deliveries_per_s": round(n / wall, 1) if wall > 0 else 0.0,
            "server_cpu_ms": round(pessimistic * 1000, 1),
            "server_cpu_pct": round(100 * pessimistic / wall, 1) if wall > 0 else None,
            "cpu_ms_per_1000": per_1k(pessimistic),
            # The same cost measured as the processes alone (what the bench reported before), as
            # processes plus their core's kernel threads, and as the pinned core's busy time.
            "cpu_ms_per_1000_process": per_1k(server),
            "cpu_ms_per_1000_kthreads": per_1k(with_kthreads),
            "cpu_ms_per_1000_core": per_1k(core),
            # Interrupt and softirq time on the server's core (charged to whatever ran, or to
            # nobody when the core was idle): bounds what the process figures could miss.
            "core_irq_ms_per_1000": per_1k(irq),
            "cpu_basis": "core" if pessimistic is core else "process+kthreads",
            # The kernel's part of the server's CPU: what no change to Python code can remove.
            "server_kernel_pct": round(100 * kernel / server, 1) if server > 0 else None,
            "redis_cpu_ms_per_1000": per_1k(redis),
            "loadgen_cpu_pct": round(100 * own / wall, 1) if wall > 0 else None,
            "client_bound": wall > 0 and own / wall >= CLIENT_BOUND,
            "rss_mb": round(tree_rss_kib(self.pids) / 1024, 1),
            # CPU used by other processes on the machine in the window (% of one core): when
            # high, latency and throughput figures are disturbed, and so is the core's figure.
            "other_cpu_pct": round(100 * other / wall, 1) if wall > 0 else None,
            "contended": contended,
        }
        return self.result
