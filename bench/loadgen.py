"""The load-generator process: runs one scenario spec (JSON on stdin), prints result rows (stdout).

It runs pinned to its own core, apart from the server, and measures both sides over each window:
the server's CPU (utime+stime from /proc/<pid>/stat) and RSS, and its own CPU, so a result the
load generator could not keep up with is flagged `client_bound`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import sys
import time
from typing import Any

import orjson

from bench import clients
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
P99_LIMIT_MS = 100.0
CONNECT_CONCURRENCY = 200
MAX_PUBLISH_RATE = 5000.0  # events/s over one publisher connection


def log(*parts: object) -> None:
    print("[loadgen]", *parts, file=sys.stderr, flush=True)


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
    the window: the core's figure on a quiet machine, else the processes plus kernel threads.
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
        if core is not None and not contended and self.redis is None:
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


async def gather_bounded(factories: list[Any], limit: int = CONNECT_CONCURRENCY) -> list[Any]:
    """Run coroutine factories with bounded concurrency; failures come back as exceptions."""
    sem = asyncio.Semaphore(limit)

    async def one(f: Any) -> Any:
        async with sem:
            try:
                return await f()
            except Exception as exc:
                return exc

    return await asyncio.gather(*(one(f) for f in factories))


def target(spec: dict[str, Any]) -> clients.Target:
    return clients.Target(
        spec.get("server", "fourcast"),
        spec["port"],
        spec["channel"],
        spec.get("auth", "key"),
        spec["api_key"],
    )


async def readers(spec: dict[str, Any], n: int) -> list[clients.Target]:
    """Who the n readers are: API-key readers share the key; each guest signs in for itself."""
    base = target(spec)
    if base.server != "fourcast" or base.auth != "guest":
        return [base] * n
    tokens = await gather_bounded(
        [lambda i=i: clients.guest_token(spec["port"], f"reader {i}") for i in range(n)],
        limit=20,
    )
    bad = [t for t in tokens if isinstance(t, BaseException)]
    if bad:
        raise RuntimeError(f"{len(bad)} of {n} guests could not sign in, e.g. {bad[0]!r}")
    return [base.with_credential(t) for t in tokens]


async def publisher(spec: dict[str, Any]) -> clients.Pacer:
    return await clients.make_publisher(
        spec.get("publish_via", "rest"), target(spec), spec["api_key"]
    )


async def connect_subscribers(spec: dict[str, Any], tracker: Tracker, n: int) -> list[Any]:
    who = await readers(spec, n)
    if spec["transport"] == "websocket":
        kind = spec.get("ws_client", "picows")
        factories = [lambda t=t: clients.ws_subscribe(kind, t, tracker) for t in who]
    else:
        factories = [lambda t=t: clients.sse_subscribe(t, tracker) for t in who]
    before = len(tracker.subs)
    results = await gather_bounded(factories)
    held = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        log(f"{len(errors)} of {n} connections failed, e.g. {errors[0]!r}")
        # Subscribers that never connected are not part of any phase.
        alive = {id(c.sub) for c in held}
        tracker.subs = tracker.subs[:before] + [s for s in tracker.subs[before:] if id(s) in alive]
    return held


async def close_all(conns: list[Any]) -> None:
    for c in conns:
        with contextlib.suppress(Exception):
            await c.close()
    await asyncio.sleep(0.2)


async def drain(tracker: Tracker, last: int, timeout: float) -> float | None:
    """Wait until every live subscriber has `..last`; the time it took, or None on timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if tracker.pending(last) == 0:
            return time.monotonic() - t0
        await asyncio.sleep(0.02)
    return None


async def settle(tracker: Tracker, expected: int, timeout: float = 15.0) -> None:
    """Wait until `expected` deliveries have arrived in total, or nothing arrives for 0.5 s."""
    t0 = time.monotonic()
    seen, quiet_since = tracker.delivered, time.monotonic()
    while tracker.delivered < expected and time.monotonic() - t0 < timeout:
        await asyncio.sleep(0.05)
        if tracker.delivered != seen:
            seen, quiet_since = tracker.delivered, time.monotonic()
        elif time.monotonic() - quiet_since > 0.5:
            return


def row(spec: dict[str, Any], **fields: Any) -> dict[str, Any]:
    base = {
        "transport": spec["transport"],
        "kind": spec["kind"],
        "subscribers": spec.get("subscribers", 0),
    }
    base.update(fields)
    return base


# Scenarios ---------------------------------------------------------------------------------------


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


async def publish(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """REST publishing with P concurrent publishers: acknowledged (durable) events/s."""
    port, key = spec["port"], spec["api_key"]
    tgt = target(spec)
    path = tgt.publish_path
    p = spec["publishers"]
    conns = [await clients.HTTPClient.connect(port) for _ in range(p)]
    state = {"measure": False, "ok": 0, "errors": 0, "seq": 0}
    latencies: list[float] = []
    ids: set[str] = set()
    stop = asyncio.Event()
    last_error: list[Any] = []

    async def worker(c: clients.HTTPClient) -> None:
        while not stop.is_set():
            state["seq"] += 1
            body = clients.publish_body(tgt, state["seq"])
            t0 = time.perf_counter()
            status, resp = await c.request(clients.post_request(port, path, body, key))
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
    from bench.track import percentile

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


async def poll(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """N short pollers (one request every `interval` s) or long pollers, events at `rate`/s."""
    port = spec["port"]
    n, rate, long = spec["subscribers"], spec["rate"], spec["transport"] == "longpoll"
    interval = spec.get("interval", 1.0)
    tracker = Tracker()
    conns = [
        c
        for c in await gather_bounded([lambda: clients.HTTPClient.connect(port) for _ in range(n)])
        if not isinstance(c, BaseException)
    ]
    stop = asyncio.Event()
    requests = {"n": 0, "errors": 0}
    loop = asyncio.get_running_loop()

    async def poller(c: clients.HTTPClient, who: clients.Target) -> None:
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


class PollAdapter:
    """How one server is polled: fourcast and the floor by `?after=cursor[&wait=25]` answered with
    `{"events", "next"}`; Nchan by `If-Modified-Since`/`If-None-Match` from the last answer's
    `Last-Modified`/`Etag`, on `/sub` (long poll: every pending message, one per line) or `/poll`
    (interval poll: 304, or one message)."""

    def __init__(self, who: clients.Target, long: bool) -> None:
        self.who = who
        self.long = long
        self.nchan = who.nchan
        self.headers = who.header_lines()
        self.ok = (200, 304, 408) if self.nchan else (200,)
        if self.nchan:
            self.path = f"/sub?id={who.channel}" if long else f"/poll?id={who.channel}"
        else:
            self.path = who.events_path

    def first(self) -> bytes:
        """The request that finds where a poller starts."""
        port = self.who.port
        if self.nchan:
            return clients.get_request(port, self.path)
        return clients.get_request(port, self.path + "?limit=1", self.headers)

    def request(self, cursor: Any) -> bytes:
        port = self.who.port
        if self.nchan:
            modified, etag = cursor
            return clients.get_request(
                port, self.path, f"If-Modified-Since: {modified}\r\nIf-None-Match: {etag}\r\n"
            )
        q = f"{self.path}?after={cursor}" + ("&wait=25" if self.long else "")
        return clients.get_request(port, q, self.headers)

    def answer(
        self, c: clients.HTTPClient, status: int, body: bytes, cursor: Any
    ) -> tuple[Any, list[dict[str, Any]], bool]:
        """(next cursor, the events' data, reset?) from one answer."""
        if self.nchan:
            if status != 200:
                return cursor, [], False
            modified, etag = c.header(b"last-modified"), c.header(b"etag")
            nxt = (modified.decode(), etag.decode()) if modified and etag else cursor
            return nxt, [orjson.loads(line) for line in body.split(b"\n") if line], False
        msg = orjson.loads(body)
        events = [e["data"] for e in msg["events"] if e.get("type") == clients.BENCH_TYPE]
        return msg["next"], events, bool(msg.get("reset"))


KINDS = {"fanout": fanout, "idle": idle, "publish": publish, "poll": poll}


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


async def amain(spec: dict[str, Any]) -> list[dict[str, Any]]:
    rows = await asyncio.wait_for(KINDS[spec["kind"]](spec), spec.get("timeout", 600))
    if clients.AiohttpSub.session is not None:
        await clients.AiohttpSub.session.close()
    return rows


def main() -> None:
    spec = orjson.loads(sys.stdin.buffer.read())
    nofile = raise_nofile()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    rows = runner(amain(spec))
    for r in rows:
        r["loadgen_nofile"] = nofile
    sys.stdout.buffer.write(orjson.dumps({"rows": rows}) + b"\n")
    sys.stdout.flush()
