"""Short and long polling: N pollers on one channel while events are published at a fixed rate."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bench.clients.http import HTTPClient
from bench.clients.polling import PollAdapter
from bench.clients.target import Target
from bench.loadgen.connect import gather_bounded, publisher, readers
from bench.loadgen.output import log, row
from bench.loadgen.settle import drain
from bench.loadgen.window import Window
from bench.track import Tracker


async def poll(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """N short pollers (one request every `interval` s) or long pollers, events at `rate`/s."""
    port = spec["port"]
    n, rate, long = spec["subscribers"], spec["rate"], spec["transport"] == "longpoll"
    interval = spec.get("interval", 1.0)
    tracker = Tracker()
    conns = [
        c
        for c in await gather_bounded([lambda: HTTPClient.connect(port) for _ in range(n)])
        if not isinstance(c, BaseException)
    ]
    stop = asyncio.Event()
    requests = {"n": 0, "errors": 0}
    loop = asyncio.get_running_loop()

    async def poller(c: HTTPClient, who: Target) -> None:
        sub = tracker.new_sub()
        adapter = PollAdapter(who, long)
        status, body = await c.request(adapter.first())
        cursor, _events, _reset = adapter.answer(c, status, body, None)
        due = loop.time() + random.random() * interval
        again = False
        while not stop.is_set():
            if not long and not again:
                await asyncio.sleep(max(0.0, due - loop.time()))
                due += interval
            try:
                status, body = await c.request(adapter.request(cursor))
            except ConnectionError:
                if sub.alive and not stop.is_set():
                    sub.alive = False
                    tracker.disconnects += 1
                return
            requests["n"] += 1
            if status not in adapter.ok:
                requests["errors"] += 1
                await asyncio.sleep(interval)
                continue
            now = time.time() * 1000
            cursor, events, reset = adapter.answer(c, status, body, cursor)
            for d in events:
                sub.event(d["seq"], d["sent"], now)
            if reset:
                tracker.resets += 1
            # Nchan's interval poll answers one message at a time: a client asks again at once
            # after a 200 until it is told 304 (as the Node generator's client did).
            again = adapter.nchan and status == 200 and not long

    pub = await publisher(spec)
    # One event before the pollers take their cursors, so that they all start from the same one.
    # (It once also worked around a long poll on a never-written channel not being woken by its
    # first event; that is fixed, and checked by tests/integration/test_polllane.py.)
    pub.publish_one()
    for _ in range(250):
        if pub.acks:
            break
        await asyncio.sleep(0.02)
    who = await readers(spec, len(conns))
    tasks = [asyncio.create_task(poller(c, t)) for c, t in zip(conns, who, strict=True)]
    await asyncio.sleep(interval + 0.5)  # every poller has its cursor and is polling
    warmup, seconds = spec.get("warmup", 2.0), spec["seconds"]
    first = pub.seq + 1
    tracker.begin(first)
    publishing = asyncio.create_task(pub.run(rate, warmup + seconds))
    await asyncio.sleep(warmup)
    req0 = requests["n"]
    window = Window(spec, tracker)
    await asyncio.sleep(seconds)
    measured = window.end()
    req_window = requests["n"] - req0
    await publishing
    drained = await drain(tracker, pub.seq, interval + 3.0)
    summary = tracker.summary(pub.seq)
    stop.set()
    await pub.close()
    for c in conns:
        c.close()
    await asyncio.wait(tasks, timeout=3)
    failures = [t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception()]
    if failures:
        log(f"{len(failures)} pollers failed, e.g. {failures[0]!r}")
    for task in tasks:
        task.cancel()
    r = row(
        spec,
        subscribers=len(conns),
        scenario=f"{'long' if long else 'short'} poll {len(conns)} @ {rate:g} ev/s",
        events_per_s=rate,
        **measured,
        **summary,
        requests_per_s=round(req_window / measured["window_s"], 1),
        request_errors=requests["errors"],
        drain_s=None if drained is None else round(drained, 3),
        disconnects=tracker.disconnects,
        resets=tracker.resets,
        ok=summary["loss"] == 0 and summary["dup"] == 0 and requests["errors"] == 0,
    )
    log(
        f"{r['scenario']}: {r['deliveries_per_s']:.0f}/s, {r['requests_per_s']} req/s p50 {r['p50_ms']} "
        f"p99 {r['p99_ms']} loss {r['loss']} cpu/1k {r['cpu_ms_per_1000']}"
    )
    return [r]
