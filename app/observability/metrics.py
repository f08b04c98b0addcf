"""Prometheus metrics, one registry per app (no process-global state).

Per-subscriber work stays minimal (a locked counter and a histogram per write cost a large
share of the fan-out's CPU: bench/README.md): writers add to plain integers, folded into the
Prometheus counters when /metrics is read, and delivery latency is sampled on one write in
LATENCY_SAMPLE (the newest event of that write, from acceptance to write).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

TRANSPORTS = ("websocket", "sse", "longpoll", "shortpoll")
LATENCY_SAMPLE = 256


class Tally:
    """Deliveries of one transport: plain integers, added to once per write (a writer's batch)
    or once per fanned-out event (the hub's direct writes); folded in when /metrics is read."""

    __slots__ = ("_histogram", "_on", "count", "countdown")

    def __init__(self, histogram: Any, on: bool) -> None:
        self.count = 0
        self.countdown = 1
        """Down to 0: the writer calls `sample` with the event's `ts` (the first write is
        sampled, then one in LATENCY_SAMPLE)."""
        self._histogram = histogram
        self._on = on

    def add(self, count: int, newest_ts_ms: float | None) -> None:
        """One write of `count` events (a writer's batch)."""
        self.count += count
        self.countdown -= 1
        if self.countdown <= 0 and newest_ts_ms is not None:
            self.sample(newest_ts_ms)

    def wrote(self, count: int, newest_ts_ms: float) -> None:
        """`count` writes of one event each (the hub's fan-out, counted once per event)."""
        self.count += count
        self.countdown -= count
        if self.countdown <= 0:
            self.sample(newest_ts_ms)

    def sample(self, newest_ts_ms: float) -> None:
        self.countdown = LATENCY_SAMPLE
        if self._on:
            self._histogram.observe(max(0.0, time.time() - newest_ts_ms / 1000))


class Metrics:
    def __init__(self, *, per_delivery: bool = True) -> None:
        self.per_delivery = per_delivery
        """Count deliveries and sample latency in the writers (the only per-subscriber metrics
        work); off only to measure what it costs."""
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "fourcast_open_connections",
            "Open streaming connections",
            ["transport"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "fourcast_deliveries",
            "Events written to readers",
            ["transport"],
            registry=self.registry,
        )
        self.publishes = Counter(
            "fourcast_publishes", "Publishes by outcome", ["outcome"], registry=self.registry
        )
        self.latency = Histogram(
            "fourcast_delivery_latency_seconds",
            "From acceptance to the write of a batch's newest event",
            ["transport"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.slow_readers = Counter(
            "fourcast_slow_readers_cut_off",
            "Readers cut off for falling behind",
            ["transport"],
            registry=self.registry,
        )
        self.polls = Counter(
            "fourcast_polls_answered", "Polls answered", ["transport"], registry=self.registry
        )
        self.long_polls_waiting = Gauge(
            "fourcast_long_polls_waiting",
            "Long polls parked until their channel's next event or their deadline",
            registry=self.registry,
        )
        self.commit_batch = Histogram(
            "fourcast_commit_batch_events",
            "Events per group commit",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=self.registry,
        )
        # Resolve label children once: the hot paths then just add.
        self.delivered = {t: self.deliveries.labels(t) for t in TRANSPORTS}
        self.latency_of = {t: self.latency.labels(t) for t in TRANSPORTS}
        self.open = {t: self.connections.labels(t) for t in TRANSPORTS}
        self.cut_off = {t: self.slow_readers.labels(t) for t in TRANSPORTS}
        self.answered = {t: self.polls.labels(t) for t in TRANSPORTS}
        self.published = {o: self.publishes.labels(o) for o in ("created", "replayed", "refused")}
        self.tally = {t: Tally(self.latency_of[t], per_delivery) for t in TRANSPORTS}
        self._answered = dict.fromkeys(TRANSPORTS, 0)
        self.sockets = Gauge(
            "fourcast_open_sockets",
            "HTTP and WebSocket connections the server holds open",
            registry=self.registry,
        )
        self.sockets_closed_early = Counter(
            "fourcast_sockets_closed_early",
            "Sockets the server closed: head_timeout, body_timeout, evicted (for a newcomer), refused, "
            "pipelined, head_too_large, peer_gone (paused behind a response, its client gone), "
            "send_timeout (an answer stalled: its client reads nothing)",
            ["reason"],
            registry=self.registry,
        )
        self._folded: list[Callable[[], None]] = []
        """Running totals kept by their components, each added to its counter when /metrics
        is read (`counted`, `count`)."""

    def watch_sockets(self, count: Callable[[], int], closed: dict[str, int]) -> None:
        """Read the server's open sockets and the ones it closed early when /metrics is read
        (fourcast's HTTP protocol calls this, also for a plain uvicorn connection once adopted;
        under any other server they stay at 0)."""
        self.sockets.set_function(count)
        self._fold(self.sockets_closed_early.labels, closed.copy)

    # Bounds against hostile clients: each bound's size or refusals, read on scrape.

    def gauge(self, name: str, help: str, read: Callable[[], float]) -> None:
        """A gauge whose value `read` gives when /metrics is read."""
        Gauge(name, help, registry=self.registry).set_function(read)

    def gauges(
        self, name: str, help: str, label: str, values: Iterable[str], read: Callable[[str], float]
    ) -> None:
        """A gauge per `label` value, whose value `read(value)` gives when /metrics is read."""
        gauge = Gauge(name, help, [label], registry=self.registry)
        for value in values:
            gauge.labels(value).set_function(partial(read, value))

    def counted(self, name: str, help: str, label: str, read: Callable[[], dict[str, int]]) -> None:
        """A counter per `label` value, from running totals `read` gives when /metrics is read."""
        self._fold(Counter(name, help, [label], registry=self.registry).labels, read)

    def count(self, name: str, help: str, read: Callable[[], int]) -> None:
        """A counter from the running total `read` gives when /metrics is read (a count kept
        by a component as a plain integer, which only grows)."""
        counter = Counter(name, help, registry=self.registry)
        self._fold(lambda _: counter, lambda: {"": read()})

    def _fold(self, counter: Callable[[str], Counter], read: Callable[[], dict[str, int]]) -> None:
        seen: dict[str, int] = {}

        def fold() -> None:
            for key, total in read().items():
                if total > seen.get(key, 0) or key not in seen:
                    counter(key).inc(total - seen.get(key, 0))
                    seen[key] = total

        self._folded.append(fold)

    def answered_poll(self, transport: str) -> None:
        """A poll was answered (folded into `fourcast_polls_answered` when /metrics is read)."""
        self._answered[transport] += 1

    def wrote(self, transport: str, count: int, newest_ts_ms: float | None) -> None:
        """A writer sent `count` events; `newest_ts_ms` is the `ts` of the newest durable one."""
        if self.per_delivery:
            self.tally[transport].add(count, newest_ts_ms)

    def render(self) -> bytes:
        for transport, tally in self.tally.items():
            if tally.count:
                if self.per_delivery:
                    self.delivered[transport].inc(tally.count)
                tally.count = 0
        for transport, count in self._answered.items():
            if count:
                self.answered[transport].inc(count)
                self._answered[transport] = 0
        for fold in self._folded:
            fold()
        return generate_latest(self.registry)
