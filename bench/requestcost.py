"""`python -m bench requestcost`: what one poll costs each server's process, in CPU microseconds,
under the same load at the same time: fourcast's short poll (`python -m app`, an API key, one event
per answer), Nchan's interval poll (one message per answer) and the bare server
(bench/peers/bare_server.py: uvloop answering a fixed body, no parsing), the least any Python
server can spend on a request here.

Two loads, each on all three at once: `hot`, a few connections each asking again as soon as it is
answered (the long poll's case: wake-ups shared by many requests), and `cold`, many connections each
asking once a second (the short poll's case: nearly every request wakes the server on its own).
The figures bound what the poll targets against Nchan leave for fourcast's own code
(bench/README.md, "Where fourcast's remaining cost goes")."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.clients.http import HTTPClient, get_request, post_request
from bench.procstat import ROOT, tree, tree_seconds
from bench.servers.fourcast import Server
from bench.servers.peers import PEERS, NchanServer
from bench.servers.process import Process

WARMUP_S = 30.0
"""The most a load may take before every connection has been answered once (a failure past it)."""
CHANNEL = "public:bench"


@dataclass
class BareServer(Process):
    name = "bare"

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        argv = [sys.executable, str(PEERS / "bare_server.py"), str(self.port)]
        return argv, dict(os.environ), ROOT


class Poller(HTTPClient):
    """One keep-alive connection (`HTTPClient`'s framing) asking `request` again `interval` s after each answer (at once
    when 0), counting answers; any answer but a 200 with `expect` in its body is a failure."""

    def __init__(self, request: bytes, expect: bytes, interval: float) -> None:
        super().__init__()
        self.raw = request
        self.expect = expect
        self.interval = interval
        self.answered = 0
        self.failed = ""
        self.on_response = self._answered

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        asyncio.get_running_loop().call_later(random.uniform(0, self.interval), self.ask)

    def ask(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.raw)

    def _answered(self, status: int, body: bytes) -> None:
        if status != 200 or self.expect not in body:
            self.failed = f"{status} {body[:80]!r}"
        self.answered += 1
        if self.interval:
            asyncio.get_running_loop().call_later(self.interval, self.ask)
        else:
            self.ask()


@dataclass
class Side:
    """One server under the load: what a poll of it asks, and what its answer must hold."""

    server: Process
    path: str
    headers: str
    expect: bytes

    async def publish(self) -> None:
        port = self.server.port
        if isinstance(self.server, NchanServer):
            raw = "POST /pub?id=bench HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            status, _ = await HTTPClient.once(port, raw.encode())
        elif isinstance(self.server, Server):
            body = b'{"type":"bench","data":"hello"}'
            for _ in range(2):  # the poll asks after the first: one event per answer
                path = f"/api/channels/{CHANNEL}/events"
                status, _ = await HTTPClient.once(
                    port, post_request(port, path, body, self.server.api_key)
                )
        else:
            return
        assert status in (200, 201, 202), f"{self.server.name}: publish answered {status}"


def sides(fourcast: Server, nchan: NchanServer, bare: BareServer) -> list[Side]:
    key = f"Authorization: Bearer {fourcast.api_key}\r\n"
    return [
        Side(fourcast, f"/api/channels/{CHANNEL}/events?after=1", key, b'"hello"'),
        Side(nchan, "/poll?id=bench", "", b"hello"),
        Side(bare, "/", "", b'"hello"'),
    ]


async def measure(
    all_sides: list[Side], connections: int, interval: float, seconds: float
) -> dict[str, float]:
    """CPU microseconds per answered poll of each side's process (its children too), all loaded
    at once."""
    loop = asyncio.get_running_loop()
    pollers: dict[str, list[Poller]] = {}
    for side in all_sides:
        port = side.server.port
        request = get_request(port, side.path, side.headers)
        pollers[side.server.name] = []
        for _ in range(connections):
            poller = Poller(request, side.expect, interval)
            await loop.create_connection(lambda p=poller: p, "127.0.0.1", port)  # type: ignore[misc]
            pollers[side.server.name].append(poller)
    await warmed_up(pollers, loop.time() + WARMUP_S)
    pids = {s.server.name: tree(s.server.pid) for s in all_sides}
    start = {n: (tree_seconds(p)[0], sum(q.answered for q in pollers[n])) for n, p in pids.items()}
    await asyncio.sleep(seconds)
    result = {}
    for name, pid_list in pids.items():
        cpu = tree_seconds(pid_list)[0] - start[name][0]
        answered = sum(q.answered for q in pollers[name]) - start[name][1]
        failed = next((q.failed for q in pollers[name] if q.failed), "")
        if failed or not answered:
            raise RuntimeError(f"{name}: {answered} answers; {failed}")
        result[name] = cpu * 1e6 / answered
    for plist in pollers.values():
        for poller in plist:
            if poller.transport is not None:
                poller.transport.close()
    return result


async def warmed_up(pollers: dict[str, list[Poller]], deadline: float) -> None:
    """Until every connection of every side has been answered once: the load runs at its own
    pace from then on, and a side that cannot answer fails here rather than in the window."""
    loop = asyncio.get_running_loop()
    while any(not q.answered and not q.failed for plist in pollers.values() for q in plist):
        if loop.time() > deadline:
            raise RuntimeError("the load did not start: a connection was never answered")
        await asyncio.sleep(0.05)


async def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    fourcast, nchan, bare = Server(), NchanServer(), BareServer()
    started: list[Process] = []
    cores = os.sched_getaffinity(0)
    try:
        for server in (fourcast, nchan, bare):
            started.append(server.start())
        all_sides = sides(fourcast, nchan, bare)
        for side in all_sides:
            await side.publish()
        if len(cores) >= 2:
            os.sched_setaffinity(0, {1})  # the servers run on core 0 (Process.core)
        return {
            "hot": await measure(all_sides, args.hot_connections, 0.0, args.seconds),
            "cold": await measure(all_sides, args.cold_connections, 1.0, args.seconds),
        }
    finally:
        os.sched_setaffinity(0, cores)
        for process in started:
            process.stop()


def table(result: dict[str, dict[str, float]]) -> str:
    lines = [
        "| load | fourcast | Nchan | bare | fourcast / Nchan | bare / Nchan |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for load, row in result.items():
        f, n, b = row["fourcast"], row["nchan"], row["bare"]
        vs = (f"{f / n:.2f}x", f"{b / n:.2f}x") if n else ("-", "-")
        lines.append(f"| {load} | {f:.1f} | {n:.1f} | {b:.1f} | {vs[0]} | {vs[1]} |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench requestcost", description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0, help="measured per load")
    parser.add_argument("--hot-connections", type=int, default=30)
    parser.add_argument("--cold-connections", type=int, default=500)
    result = asyncio.run(run(parser.parse_args(argv)))
    print("CPU microseconds per poll, each server's process, side by side:\n")
    print(table(result))
