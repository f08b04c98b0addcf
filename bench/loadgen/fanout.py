"""The fan-out ladder: N readers on one channel, the publish rate stepped up until a step fails."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.loadgen.connect import close_all, connect_subscribers, publisher
from bench.loadgen.output import log, row
from bench.loadgen.settle import drain, settle
from bench.loadgen.window import Window
from bench.track import Tracker

P99_LIMIT_MS = 100.0


MAX_PUBLISH_RATE = 5000.0  # events/s over one publisher connection


async def fanout(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Fan-out on one channel, the publish rate stepped up until loss, backlog or p99 > 100 ms."""
    n = spec["subscribers"]
    tracker = Tracker()
    t = time.monotonic()
    whole = Window(spec, tracker)  # the whole scenario, connecting included
    conns = await connect_subscribers(spec, tracker, n)
    held = len(conns)
    log(f"{spec['transport']}: {held}/{n} subscribers in {time.monotonic() - t:.1f} s")
    pub = await publisher(spec)
    # Warm up the code paths (events before a phase are not counted).
    prewarm = spec.get("prewarm", 1.0)
    await pub.run(min(50.0, 2000.0 / max(held, 1) + 5), prewarm)
    await settle(tracker, pub.seq * held)
    rows = []
    warmup, step = spec.get("warmup", 1.0), spec["step_seconds"]
    # Steps up to `always` deliveries/s are measured even when an earlier one failed (they are the
    # reference loads); past it, the first failing step ends the scenario.
    always = spec.get("always_to", 0)
    for target in spec["targets"]:
        rate = target / max(held, 1)
        if rate > MAX_PUBLISH_RATE:
            break
        if rows and not rows[-1]["ok"] and (target > always or rows[-1]["disconnects"]):
            break
        await settle(tracker, tracker.delivered + tracker.pending(pub.seq))
        first = pub.seq + 1
        tracker.begin(first)
        resets0, disc0 = tracker.resets, tracker.disconnects
        loop = asyncio.get_running_loop()
        t_pub = loop.time()
        around = Window(spec, tracker)  # the step with its warm-up and drain
        publishing = asyncio.create_task(pub.run(rate, warmup + step))
        await asyncio.sleep(warmup)
        window = Window(spec, tracker)
        await asyncio.sleep(step)
        measured = window.end()
        await publishing
        pub_lag = loop.time() - t_pub - (warmup + step)
        last = pub.seq
        drained = await drain(tracker, last, spec.get("drain", 3.0))
        # The same cost over wider windows (bench/README.md, "Which CPU figure"): the step from
        # its first publish to the last delivery, and (first step) the scenario from before the
        # first connection.
        wider = {"cpu_ms_per_1000_step": around.end()["cpu_ms_per_1000_process"]}
        if not rows:
            wider["cpu_ms_per_1000_scenario"] = whole.end()["cpu_ms_per_1000_process"]
        # The headline is the higher of the steady window's figure and the whole step's.
        step_cost = wider["cpu_ms_per_1000_step"]
        if step_cost is not None and (measured["cpu_ms_per_1000"] or 0) < step_cost:
            measured = {**measured, "cpu_ms_per_1000": step_cost, "cpu_basis": "step"}
        summary = tracker.summary(last)
        backlog = drained is None or drained > 1.0 or pub_lag > 0.5
        disconnects = tracker.disconnects - disc0
        ok = (
            summary["loss"] == 0
            and summary["dup"] == 0
            and summary["reorder"] == 0
            and not backlog
            and not disconnects
            and pub.errors == 0
            and summary["p99_ms"] is not None
            and summary["p99_ms"] <= P99_LIMIT_MS
        )
        r = row(
            spec,
            subscribers=held,
            scenario=f"fanout {held} @ {target / 1000:g}k/s",
            events_per_s=round(rate, 2),
            target_deliveries_per_s=target,
            **measured,
            **wider,
            **summary,
            drain_s=None if drained is None else round(drained, 3),
            backlog=backlog,
            publisher_lag_s=round(pub_lag, 3),
            publish_errors=pub.errors,
            disconnects=disconnects,
            resets=tracker.resets - resets0,
            ok=ok,
        )
        rows.append(r)
        log(
            f"{r['scenario']} {spec['transport']}: {r['deliveries_per_s']:.0f}/s p50 {r['p50_ms']} "
            f"p99 {r['p99_ms']} loss {r['loss']} cpu/1k {r['cpu_ms_per_1000']} "
            f"server {r['server_cpu_pct']}% loadgen {r['loadgen_cpu_pct']}% ok={ok}"
        )
        await asyncio.sleep(0.3)
    await pub.close()
    await close_all(conns)
    return rows
