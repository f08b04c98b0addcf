"""`python -m bench ab`: two servers side by side, under the same fan-out load: two versions or
cases of fourcast, or fourcast and a peer (the floor app, Nchan).

A change worth a few per cent is lost in the drift between two runs made minutes apart on a shared
machine. Here both servers run at once, pinned to the same core, each with the same readers and
the same publishes, so whatever slows the machine slows both: their CPU per delivery is compared
over the same windows, and the median ratio is printed (an A/A run, the same revision twice,
shows the tool's own noise: within 1 %).

Readers are plain asyncio protocols on the other core that read and discard (WebSocket frames or
SSE chunks), or poll, asking again with each answer's cursor (bench/clients/abreaders.py); events
are published over pipelined REST at the rate that gives `--rate` deliveries per second to each
server. Each side is started as `make bench` starts it (bench/abside.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from functools import partial
from typing import Any

import orjson

from bench.abside import LAUNCHES, SERVERS, Side
from bench.clients.abreaders import as_reader, subscribe
from bench.clients.http import HTTPClient, Pipeline, post_request
from bench.clients.target import Target

TRANSPORTS = ("websocket", "sse", "longpoll", "shortpoll")

PIPELINE_DEPTH = 16
"""Publishes a side may leave unanswered (fourcast's and uvicorn's bound is 32 pipelined)."""
EVENT = b'{"type":"ab","data":{"pad":"%s"}}' % (b"x" * 80)
"""What `ab` publishes, one pipelined REST publish per event (`post_request`, with the API key)."""


async def publish_once(who: Target) -> None:
    request = post_request(who.port, who.publish_path, EVENT, who.credential)
    status, body = await HTTPClient.once(who.port, request)
    if status >= 300:
        raise RuntimeError(f"{who.server} refused the first publish: {status} {body[:200]!r}")


async def compare(args: argparse.Namespace) -> dict[str, Any]:
    """The two sides' CPU per 1,000 deliveries in each window, the candidate / base ratio of
    each window (`windows`) and their median (`ratio`)."""
    sides = [
        Side(
            getattr(args, f"{name}_server"),
            getattr(args, name),
            getattr(args, f"{name}_launch"),
            getattr(args, f"{name}_backend"),
            getattr(args, f"{name}_auth"),
        )
        for name in ("candidate", "base")
    ]
    try:
        for side in sides:
            side.start()
        for side in sides:
            # One event before the readers come: a poller's first ask then answers at once
            # everywhere (Nchan's waits for a first message), as in `make bench`.
            await publish_once(side.target())
        readers = []
        for side in sides:
            for _ in range(0, args.readers, 50):
                whos = [as_reader(side.target(), len(readers) + i) for i in range(50)]
                batch = [subscribe(who, args.transport) for who in await asyncio.gather(*whos)]
                readers += await asyncio.gather(*batch)
        # Connected once the readers are in: signing in 1,000 guests outlasts a keep-alive.
        loop = asyncio.get_running_loop()
        publishers: list[Pipeline] = []
        for side in sides:
            who = side.target()
            request = post_request(who.port, who.publish_path, EVENT, who.credential)
            _, pipeline = await loop.create_connection(
                partial(Pipeline, request, PIPELINE_DEPTH), "127.0.0.1", who.port
            )
            publishers.append(pipeline)
        events_per_s = args.rate / args.readers

        # Each event goes to both servers, in turns of which goes first: the one published to
        # first starts its fan-out first, and with a fixed order an A/A run read 1.02x.
        orders = (publishers, publishers[::-1])

        async def publish(seconds: float) -> None:
            end = loop.time() + seconds
            due = loop.time()
            tick = 0
            while loop.time() < end:
                for publisher in orders[tick % 2]:
                    publisher.send()
                tick += 1
                due += 1 / events_per_s
                await asyncio.sleep(max(0.0, due - loop.time()))

        await publish(3.0)  # warm up
        ratios: list[float] = []
        costs: list[list[float]] = [[], []]
        for window in range(args.windows):
            before = [side.cpu_seconds() for side in sides]
            sent = [publisher.sent for publisher in publishers]
            await publish(args.seconds)
            await asyncio.sleep(0.2)  # the last events delivered
            after = [side.cpu_seconds() for side in sides]
            # Each side's own count: one held up past PIPELINE_DEPTH was sent fewer events.
            deliveries = [
                (p.sent - n) * args.readers or 1 for p, n in zip(publishers, sent, strict=True)
            ]
            cost = [(after[i] - before[i]) * 1e6 / deliveries[i] for i in range(2)]
            if not cost[1]:
                raise RuntimeError("the base used no CPU the kernel counted: longer windows")
            ratios.append(cost[0] / cost[1])
            for kept, value in zip(costs, cost, strict=True):
                kept.append(round(value, 3))
            print(
                f"window {window + 1}: candidate {cost[0]:.2f}, base {cost[1]:.2f} "
                f"CPU-ms per 1,000 deliveries: {ratios[-1]:.3f}x",
                flush=True,
            )
        for which, publisher in zip(sides, publishers, strict=True):
            if publisher.refused is not None:
                raise RuntimeError(f"{which.describe()} refused a publish: {publisher.refused}")
        starved = sum(1 for reader in readers if not reader.received)
        # A reader cut off during the run stops costing its side anything: the ratio is void.
        n = args.readers  # the candidate's readers, then the base's
        failed = [[r.failed for r in side if r.failed] for side in (readers[:n], readers[n:])]
        for reader in readers:
            reader.finished = True
            if reader.transport is not None:
                reader.transport.close()
        if failed[0] or failed[1]:
            raise RuntimeError(
                f"{len(failed[0])} of the candidate's and {len(failed[1])} of the base's readers "
                f"failed during the run, e.g. {(failed[0] or failed[1])[0]}"
            )
        if starved:
            raise RuntimeError(f"{starved} readers received nothing: the run measured nothing")
        return {
            "ratio": round(sorted(ratios)[len(ratios) // 2], 3),
            "windows": [round(r, 3) for r in ratios],
            "candidate_cpu_ms_per_1000": costs[0],
            "base_cpu_ms_per_1000": costs[1],
        }
    finally:
        for side in sides:
            side.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench ab", description=__doc__)
    parser.add_argument("--base", default="HEAD", help="a git revision (default HEAD)")
    parser.add_argument("--candidate", default="worktree", help="a git revision, or worktree")
    for side in ("candidate", "base"):
        parser.add_argument(
            f"--{side}-server",
            choices=SERVERS,
            default="fourcast",
            help=f"a peer: the {side} is the floor app or Nchan, as `make bench` starts it (its "
            "revision, launch, backend and auth are then fourcast's only, and unused)",
        )
        parser.add_argument(
            f"--{side}-backend",
            choices=("memory", "redis"),
            default="memory",
            help=f"redis: the {side} runs on a redis-server of its own (e.g. what one node on "
            "Redis pays against the in-memory backend: the same revision on both sides)",
        )
        parser.add_argument(
            f"--{side}-launch",
            choices=tuple(LAUNCHES),
            default="app",
            help=f"uvicorn: the {side} is plain `uvicorn app.main:app`, as `make bench` starts it "
            "(default: `python -m app`)",
        )
        parser.add_argument(
            f"--{side}-auth",
            choices=("key", "guest"),
            help=f"who the {side}'s readers are: the API key, or each a guest with its own "
            "session (default: --auth)",
        )
    parser.add_argument("--transport", choices=TRANSPORTS, default="websocket")
    parser.add_argument(
        "--auth",
        choices=("key", "guest"),
        default="key",
        help="who the readers are: the API key, or each a guest with its own session",
    )
    parser.add_argument("--readers", type=int, help="per server (1,000; polls: 500)")
    parser.add_argument("--rate", type=int, help="deliveries/s per server (20,000; polls: 5,000)")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0, help="per window")
    parser.add_argument(
        "--json", action="store_true", help="end with the comparison as one line of JSON"
    )
    args = parser.parse_args(argv)
    args.candidate_auth = args.candidate_auth or args.auth
    args.base_auth = args.base_auth or args.auth
    polls = args.transport in ("longpoll", "shortpoll")
    readers, rate = (500, 5_000) if polls else (1000, 20_000)
    args.readers = args.readers or readers
    args.rate = args.rate or rate
    args.readers = max(50, args.readers // 50 * 50)
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the readers on the other core, as in `make bench`
    result = asyncio.run(compare(args))
    print(
        f"median: candidate / base = {result['ratio']:.3f}x "
        f"({args.transport}, {args.rate:,}/s per server)",
        flush=True,
    )
    if args.json:
        print(orjson.dumps(result).decode())
