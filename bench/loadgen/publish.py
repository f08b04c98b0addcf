"""REST publishing throughput: P concurrent publishers, acknowledged (durable) events/s."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from bench.clients.http import HTTPClient, post_request
from bench.clients.publishers import publish_body
from bench.loadgen.connect import target
from bench.loadgen.output import log, row
from bench.loadgen.window import Window
from bench.track import percentile


async def publish(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """REST publishing with P concurrent publishers: acknowledged (durable) events/s."""
    port, key = spec["port"], spec["api_key"]
    tgt = target(spec)
    path = tgt.publish_path
    p = spec["publishers"]
    conns = [await HTTPClient.connect(port) for _ in range(p)]
    state = {"measure": False, "ok": 0, "errors": 0, "seq": 0}
    latencies: list[float] = []
    ids: set[str] = set()
    stop = asyncio.Event()
    last_error: list[Any] = []

    async def worker(c: HTTPClient) -> None:
        while not stop.is_set():
            state["seq"] += 1
            body = publish_body(tgt, state["seq"])
            t0 = time.perf_counter()
            status, resp = await c.request(post_request(port, path, body, key))
            if not state["measure"]:
                continue
            if 200 <= status < 300:
                state["ok"] += 1
                latencies.append((time.perf_counter() - t0) * 1000)
                if not tgt.nchan:  # Nchan answers with channel statistics, not an id
                    ids.add(orjson.loads(resp)["id"])
            else:
                state["errors"] += 1
                if not last_error:
                    last_error.append((status, resp[:200].decode(errors="replace")))

    tasks = [asyncio.create_task(worker(c)) for c in conns]
    await asyncio.sleep(spec.get("warmup", 1.0))
    state["measure"] = True
    window = Window(spec, None)
    await asyncio.sleep(spec["seconds"])
    count = state["ok"]
    measured = window.end(count)
    state["measure"] = False
    stop.set()
    await asyncio.wait(tasks, timeout=5)
    for c in conns:
        c.close()
    lat = sorted(latencies[: count or None])
    r = row(
        spec,
        scenario=f"publish REST x{p}",
        publishers=p,
        **measured,
        p50_ms=percentile(lat, 50),
        p99_ms=percentile(lat, 99),
        loss=state["errors"],
        errors=state["errors"],
        unique_ids=len(ids),
        first_error=last_error[0] if last_error else None,
        ok=state["errors"] == 0 and (tgt.nchan or len(ids) >= count),
    )
    log(
        f"publish x{p}: {r['deliveries_per_s']:.0f}/s p50 {r['p50_ms']} p99 {r['p99_ms']} "
        f"cpu/1k {r['cpu_ms_per_1000']} errors {r['errors']} loadgen {r['loadgen_cpu_pct']}%"
    )
    return [r]
