"""Idle connections: server memory per held connection, then a probe fan-out to all of them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.loadgen.connect import close_all, connect_subscribers, publisher
from bench.loadgen.output import log, row
from bench.loadgen.settle import drain
from bench.loadgen.window import Window
from bench.procstat import tree, tree_rss_kib
from bench.track import Tracker


async def idle(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Hold N idle connections; server memory per connection; then a probe fan-out to all of them."""
    n = spec["subscribers"]
    base_n = min(100, n // 10)
    tracker = Tracker()
    conns = await connect_subscribers(spec, tracker, base_n)
    await asyncio.sleep(1.0)
    pids = tree(spec["server_pid"])
    rss0 = tree_rss_kib(pids)
    t = time.monotonic()
    conns += await connect_subscribers(spec, tracker, n - base_n)
    connect_s = time.monotonic() - t
    held = len(conns)
    log(f"{spec['transport']}: held {held}/{n} in {connect_s:.1f} s")
    await asyncio.sleep(spec.get("settle", 3.0))
    idle_window = Window(spec, tracker)
    await asyncio.sleep(spec.get("idle_seconds", 3.0))
    idle_measured = idle_window.end()
    rss1 = tree_rss_kib(pids)
    kib_per_conn = (rss1 - rss0) / max(held - base_n, 1)
    # Probe: a few events fanned out to every held connection.
    pub = await publisher(spec)
    probes = spec.get("probes", 3)
    tracker.begin(pub.seq + 1)
    window = Window(spec, tracker)
    for _ in range(probes):
        pub.publish_one()
        await asyncio.sleep(0.5)
    drained = await drain(tracker, pub.seq, 15.0)
    measured = window.end()
    summary = tracker.summary(pub.seq)
    await pub.close()
    r = row(
        spec,
        subscribers=held,
        scenario=f"idle {held} held",
        held=held,
        requested=n,
        connect_s=round(connect_s, 1),
        kib_per_conn=round(kib_per_conn, 1),
        rss_mb=round(rss1 / 1024, 1),
        idle_server_cpu_pct=idle_measured["server_cpu_pct"],
        deliveries_per_s=measured["deliveries_per_s"],
        cpu_ms_per_1000=measured["cpu_ms_per_1000"],
        server_cpu_pct=measured["server_cpu_pct"],
        loadgen_cpu_pct=measured["loadgen_cpu_pct"],
        client_bound=measured["client_bound"],
        other_cpu_pct=measured["other_cpu_pct"],
        contended=measured["contended"],
        window_s=measured["window_s"],
        deliveries=measured["deliveries"],
        probe_events=probes,
        drain_s=None if drained is None else round(drained, 3),
        disconnects=tracker.disconnects,
        **summary,
        ok=summary["loss"] == 0 and held == n,
    )
    log(
        f"idle {spec['transport']}: held {held}, {r['kib_per_conn']} KiB/conn, rss {r['rss_mb']} MB, "
        f"probe p99 {r['p99_ms']} loss {r['loss']}"
    )
    await close_all(conns)
    return [r]
