"""`python -m bench ab`: two versions of fourcast served side by side, under the same fan-out load.

A change worth a few per cent is lost in the drift between two runs made minutes apart on a shared
machine. Here both servers run at once, pinned to the same core, each with the same readers and
the same publishes, so whatever slows the machine slows both: their CPU per delivery is compared
over the same windows, and the median ratio is printed (an A/A run, the same revision twice,
shows the tool's own noise: within 1 %).

Readers are plain asyncio protocols on the other core that read and discard (WebSocket frames or
SSE chunks), or poll, asking again with each answer's cursor (bench/clients/abreaders.py); events
are published over pipelined REST at the rate that gives `--rate` deliveries per second to each
server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from bench.clients.abreaders import API_KEY, CHANNELS, credential, subscribe
from bench.clients.http import post_request
from bench.procstat import ROOT, cpu_seconds
from bench.servers import export_head, free_port, pin_command, raise_nofile
from bench.servers.fourcast import LOAD_LIMITS
from bench.servers.redis_server import RedisServer

TRANSPORTS = ("websocket", "sse", "longpoll", "shortpoll")
STOP_TIMEOUT = 45.0
"""Seconds a server gets to stop (on Redis: its drain, then up to 30 s flushing its archive)."""


def source(rev: str) -> Path:
    return ROOT if rev == "worktree" else export_head(rev)


def start(
    where: Path, core: int, redis_url: str = "", launch: str = "app"
) -> tuple[subprocess.Popen[bytes], int]:
    """A server of `where`'s code on `core`: `python -m app` without the access log, as `make
    bench` starts it, or (`launch` "uvicorn") plain `uvicorn app.main:app`, as `make bench`
    starts that: no flags but where to listen, and no protocol pings (see below)."""
    port = free_port()
    data = tempfile.mkdtemp(prefix="fourcast-ab-")
    env = {
        **os.environ,
        "PYTHONPATH": str(where),
        "FOURCAST_DATABASE_URL": f"sqlite+aiosqlite:///{data}/ab.db",
        "FOURCAST_API_KEYS": f"bench:{API_KEY}",
        "FOURCAST_SECRET_KEY": "ab" * 20,
        **LOAD_LIMITS,
        "FOURCAST_PUBLISH_RATE": "1000000",
        "FOURCAST_PUBLISH_BURST": "1000000",
        # The readers read and discard: they answer no ping, so none is sent (a reader that
        # left a ping unanswered was cut off after 45 s, and its side then cost less).
        "FOURCAST_HEARTBEAT": "3600",
        **({"FOURCAST_REDIS_URL": redis_url} if redis_url else {}),
    }
    if launch == "uvicorn":
        # uvicorn sends its own pings (`--ws-ping-interval`, not FOURCAST_HEARTBEAT).
        argv = [sys.executable, "-m", "uvicorn", "app.main:app", "--ws-ping-interval", "3600"]
    else:
        argv = [sys.executable, "-m", "app", "--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(
        [*pin_command(core), *argv, "--host", "127.0.0.1", "--port", str(port)],
        cwd=where,
        env=env,
        preexec_fn=raise_nofile,
        stdout=subprocess.DEVNULL,
    )
    return process, port


EVENT = b'{"type":"ab","data":{"pad":"%s"}}' % (b"x" * 80)
"""What `ab` publishes, one pipelined REST publish per event (`post_request`, with the API key)."""


async def wait_listening(port: int) -> None:
    for _ in range(600):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no server on port {port}")


async def compare(args: argparse.Namespace) -> dict[str, Any]:
    """The two sides' CPU per 1,000 deliveries in each window, the candidate / base ratio of
    each window (`windows`) and their median (`ratio`)."""
    sources = [source(args.candidate), source(args.base)]
    # A redis-server per side on Redis, as in `make bench`: unpinned, its CPU not the node's.
    backends = (args.candidate_backend, args.base_backend)
    launches = (args.candidate_launch, args.base_launch)
    redis: list[RedisServer | None] = []
    servers: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        for where, backend, launch in zip(sources, backends, launches, strict=True):
            redis.append(RedisServer(core=None).start() if backend == "redis" else None)
            servers.append(start(where, 0, redis[-1].url if redis[-1] else "", launch))
        for _, port in servers:
            await wait_listening(port)
        readers = []
        channels = [CHANNELS[auth] for auth in (args.candidate_auth, args.base_auth)]
        for (_, port), auth, channel in zip(
            servers, (args.candidate_auth, args.base_auth), channels, strict=True
        ):
            for _ in range(0, args.readers, 50):
                batch = [
                    subscribe(port, args.transport, channel, await credential(port, auth, n))
                    for n in range(len(readers), len(readers) + 50)
                ]
                readers += await asyncio.gather(*batch)
        loop = asyncio.get_running_loop()
        publishers = [
            (
                (await loop.create_connection(asyncio.Protocol, "127.0.0.1", port))[0],
                post_request(port, f"/api/channels/{channel}/events", EVENT, API_KEY),
            )
            for (_, port), channel in zip(servers, channels, strict=True)
        ]
        events_per_s = args.rate / args.readers

        # Each event goes to both servers, in turns of which goes first: the one published to
        # first starts its fan-out first, and with a fixed order an A/A run read 1.02x.
        orders = (publishers, publishers[::-1])

        async def publish(seconds: float) -> None:
            end = loop.time() + seconds
            due = loop.time()
            tick = 0
            while loop.time() < end:
                for publisher, request in orders[tick % 2]:
                    publisher.write(request)
                tick += 1
                due += 1 / events_per_s
                await asyncio.sleep(max(0.0, due - loop.time()))

        await publish(3.0)  # warm up
        ratios: list[float] = []
        costs: list[list[float]] = [[], []]
        for window in range(args.windows):
            before = [cpu_seconds(p.pid) for p, _ in servers]
            await publish(args.seconds)
            await asyncio.sleep(0.2)  # the last events delivered
            after = [cpu_seconds(p.pid) for p, _ in servers]
            deliveries = events_per_s * args.seconds * args.readers
            cost = [(after[i] - before[i]) * 1e6 / deliveries for i in range(2)]
            ratios.append(cost[0] / cost[1])
            for side, value in zip(costs, cost, strict=True):
                side.append(round(value, 3))
            print(
                f"window {window + 1}: candidate {cost[0]:.2f}, base {cost[1]:.2f} "
                f"CPU-ms per 1,000 deliveries: {ratios[-1]:.3f}x",
                flush=True,
            )
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
        try:
            for process, _ in servers:
                process.terminate()
            for process, _ in servers:
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            for r in redis:
                if r is not None:
                    r.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench ab", description=__doc__)
    parser.add_argument("--base", default="HEAD", help="a git revision (default HEAD)")
    parser.add_argument("--candidate", default="worktree", help="a git revision, or worktree")
    for side in ("candidate", "base"):
        parser.add_argument(
            f"--{side}-backend",
            choices=("memory", "redis"),
            default="memory",
            help=f"redis: the {side} runs on a redis-server of its own (e.g. what one node on "
            "Redis pays against the in-memory backend: the same revision on both sides)",
        )
        parser.add_argument(
            f"--{side}-launch",
            choices=("app", "uvicorn"),
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
