"""Honest neighbours: one reader per transport in a room, a steady honest publisher, and the
measures the suite holds the server to (every honest event once and in order, latency, RSS)."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.clients import TRANSPORTS, Reader, make_reader, sign_in
from tests.fixtures.server import API_KEY, ServerProcess

ROOT = Path(__file__).resolve().parents[2]
HONEST = "service:tests"
RATE = 40.0
"""Honest events per second while measuring."""


def stamp_arrivals(reader: Reader) -> None:
    """Record when each event reached the client (ms, the server's clock: same machine)."""
    got = reader._got

    def stamped(event: dict[str, Any]) -> None:
        event["_rx"] = time.time() * 1000
        got(event)

    reader._got = stamped  # type: ignore[method-assign]


@dataclass
class Room:
    server: ServerProcess
    name: str
    readers: list[Reader] = field(default_factory=list)
    published: int = 0

    @property
    def channel(self) -> str:
        return f"room:{self.name}"

    async def open(self) -> Room:
        for transport in TRANSPORTS:
            token, _ = await sign_in(self.server.url, f"honest-{transport}")
            reader = make_reader(transport, self.server.url, self.channel, token=token)
            stamp_arrivals(reader)
            self.readers.append(await reader.start())
        return self

    async def close(self) -> None:
        for reader in self.readers:
            await reader.stop()

    async def phase(self, count: int) -> dict[str, list[float]]:
        """Publish `count` honest events at RATE and wait for every reader to have them all;
        returns each transport's delivery latencies (seconds) for these events."""
        first = self.published + 1
        loop = asyncio.get_running_loop()
        start = loop.time()
        headers = self.server.service_headers
        async with httpx.AsyncClient(base_url=self.server.url, headers=headers) as client:
            for n in range(first, first + count):
                response = await client.post(
                    f"/api/channels/{self.channel}/events", json={"type": "seq", "data": {"n": n}}
                )
                assert response.status_code == 201, response.text
                delay = start + (n - first + 1) / RATE - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
        self.published += count
        await asyncio.gather(*(self._wait_all(r) for r in self.readers))
        return {
            r.transport: [(e["_rx"] - e["ts"]) / 1000 for e in honest(r) if e["data"]["n"] >= first]
            for r in self.readers
        }

    async def _wait_all(self, reader: Reader) -> None:
        async def done() -> None:
            while len(honest(reader)) < self.published and not reader.ended.is_set():
                reader._changed.clear()
                await reader._changed.wait()

        await asyncio.wait_for(done(), 30)

    def check_exactly_once_in_order(self) -> None:
        for reader in self.readers:
            numbers = [e["data"]["n"] for e in honest(reader)]
            assert numbers == list(range(1, self.published + 1)), (reader.transport, numbers)
            assert reader.resets == 0, reader.transport
            assert not reader.ended.is_set(), f"{reader.transport} reader was cut off"


def honest(reader: Reader) -> list[dict[str, Any]]:
    return [e for e in reader.durable if e["from"] == HONEST and e["type"] == "seq"]


def median(values: list[float]) -> float:
    return statistics.median(values)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def rss_mb(server: ServerProcess) -> float:
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


class Abuser:
    """The hostile guest's process (tests/hostile/abuser.py)."""

    def __init__(self, kind: str, server: ServerProcess, room: str) -> None:
        self.kind = kind
        self.args = [kind, server.url, room, API_KEY]
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 30) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.hostile.abuser",
            *self.args,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        assert line == b"ready\n", f"{self.kind} abuser never got going: {line!r}"

    async def stop(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(b"stop\n")
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), 20)
        await asyncio.wait_for(self.process.wait(), 20)
        outcome: dict[str, Any] = orjson.loads(line)
        assert "failed" not in outcome, outcome
        return outcome

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
