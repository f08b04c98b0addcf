"""Measure what the capacity plan in docs/scaling.md needs, on this machine, in about a minute.

    .venv/bin/python -m scripts.measure_cluster [--json var/cluster-figures.json]

Starts a throwaway redis-server and two fourcast nodes sharing it (like `make run-cluster`), then:
- Redis commands per durable publish (one at a time, and 32 in flight for group commit), with both
  nodes listening to the channel; per ephemeral (typing) event; Redis memory per retained entry;
- per presence member: commands to connect and disconnect, and the steady refresh cost per second;
- the idle memory (RSS) of a node per WebSocket and per SSE connection.
Everything is bounded (counts and timeouts); the processes are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import redis
import websockets

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "measure-service-key-0123456789"
SECRET = "measure-secret-key-that-is-long-enough-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready in {timeout}s")


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.redis_port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.node_ports: list[int] = []

    def start(self, nodes: int = 2) -> None:
        redis_dir = self.root / "redis"
        redis_dir.mkdir()
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.procs.append(
            subprocess.Popen(
                [server, "--bind", "127.0.0.1", "--port", str(self.redis_port), "--dir",
                 str(redis_dir), "--appendonly", "yes", "--save", ""],
                stdout=subprocess.DEVNULL,
            )
        )  # fmt: skip
        wait_until(lambda: self.redis().ping(), 10, "redis-server")
        for n in range(nodes):
            port = free_port()
            data = self.root / f"node{n}"
            data.mkdir()
            env = {k: v for k, v in os.environ.items() if not k.startswith("FOURCAST_")}
            env.update(
                FOURCAST_DATA_DIR=str(data),
                FOURCAST_REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
                FOURCAST_API_KEYS=f"measure:{API_KEY}",
                FOURCAST_SECRET_KEY=SECRET,
                FOURCAST_MAX_CONNECTIONS_PER_IP="100000",
                FOURCAST_MAX_CONNECTIONS="100000",
                FOURCAST_PUBLISH_RATE="1000",
                FOURCAST_PUBLISH_BURST="1000",
                # 200 guests sign in from one address: past the default sign-up burst (30).
                FOURCAST_SIGNUP_RATE="100000",
                FOURCAST_SIGNUP_BURST="100000",
            )
            log = (data / "server.log").open("ab")
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "app", "--port", str(port), "--no-access-log"],
                    cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
            url = f"http://127.0.0.1:{port}/healthz"
            wait_until(lambda url=url: httpx.get(url).status_code == 200, 30, "node")
            self.node_ports.append(port)

    def redis(self) -> redis.Redis:
        return redis.Redis(port=self.redis_port, socket_timeout=5)

    def node_pid(self, n: int) -> int:
        return self.procs[1 + n].pid

    def url(self, n: int) -> str:
        return f"http://127.0.0.1:{self.node_ports[n]}"

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def commandstats(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    out = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: v for k, v in out.items() if v > 0 and k not in ("info", "ping")}


def per(calls: dict[str, int], n: int) -> dict[str, float]:
    return {k: round(v / n, 3) for k, v in sorted(calls.items())}


async def subscribe_ws(url: str, channel: str, token: str | None = None) -> Any:
    protocols = ["fourcast.v1"] + ([f"fourcast.bearer.{token}"] if token else [])
    # Its messages are never read: with the client's default queue bound, websockets stops
    # reading the socket, and closing it then waits 10 s for a close frame it cannot read.
    ws = await websockets.connect(
        url.replace("http", "ws") + "/ws",
        subprotocols=protocols,  # type: ignore[arg-type]
        max_queue=None,
    )
    await asyncio.wait_for(ws.recv(), 10)  # welcome
    await ws.send(orjson.dumps({"op": "subscribe", "channel": channel, "ref": 1}).decode())
    while True:
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if reply.get("op") == "ack":
            return ws


async def publish_durable(stack: Stack, count: int, concurrency: int, channel: str) -> float:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    body = {"type": "chat.message", "data": {"text": "x" * 120, "name": "someone"}}
    numbers = iter(range(count))
    async with httpx.AsyncClient(base_url=stack.url(0), headers=headers, timeout=10) as client:

        async def worker() -> None:
            for _ in numbers:
                response = await client.post(f"/api/channels/{channel}/events", json=body)
                assert response.status_code == 201, response.text

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.monotonic() - started


async def measure(stack: Stack) -> dict[str, Any]:
    r = stack.redis()
    figures: dict[str, Any] = {}

    # Durable publishes, both nodes listening (one WebSocket subscriber on each).
    listeners = [await subscribe_ws(stack.url(n), "public:measure") for n in (0, 1)]
    await asyncio.sleep(1)
    for concurrency in (1, 32):
        n = 2000
        before = commandstats(r)
        took = await publish_durable(stack, n, concurrency, "public:measure")
        await asyncio.sleep(0.5)
        calls = diff(commandstats(r), before)
        figures[f"durable_publish_c{concurrency}"] = {
            "events": n,
            "seconds": round(took, 2),
            "commands_per_event": per(calls, n),
            "total_per_event": round(sum(calls.values()) / n, 2),
        }
    for ws in listeners:
        await ws.close()

    # Redis memory per retained entry (a 120-character chat message).
    r.delete("fourcast:ch:public:memory")
    used = int(r.info("memory")["used_memory"])
    await publish_durable(stack, 1000, 16, "public:memory")
    figures["redis_bytes_per_retained_entry"] = round(
        (int(r.info("memory")["used_memory"]) - used) / 1000
    )
    figures["event_json_bytes"] = len(
        orjson.dumps(
            {
                "id": "123456",
                "channel": "room:room-0001",
                "type": "chat.message",
                "ts": 1795855042339.997,
                "from": "user:4279b76d3b60dfa7",
                "data": {"text": "x" * 120, "name": "someone"},
            }
        )
    )

    # People: sign in, connect to a room on node 0, and measure presence costs.
    people = 200
    tokens = []
    async with httpx.AsyncClient(base_url=stack.url(0), timeout=10) as client:
        for i in range(people):
            response = await client.post("/api/session", json={"name": f"p{i}"})
            tokens.append(response.json()["token"])
    before = commandstats(r)
    sockets = [await subscribe_ws(stack.url(0), "room:presence", token) for token in tokens]
    await asyncio.sleep(0.5)
    calls = diff(commandstats(r), before)
    figures["presence_connect"] = {
        "commands_per_person": per(calls, people),
        "total": round(sum(calls.values()) / people, 2),
    }
    window = 10.0
    before = commandstats(r)
    await asyncio.sleep(window)
    calls = diff(commandstats(r), before)
    presence_calls = {k: v for k, v in calls.items() if not k.startswith("xread")}
    figures["presence_steady"] = {
        "members": people,
        "seconds": window,
        "commands_per_member_per_second": round(sum(presence_calls.values()) / people / window, 3),
        "by_command_per_second": {k: round(v / window, 1) for k, v in sorted(calls.items())},
    }
    # Typing: one signal per person (throttle key, state hash, ephemeral PUBLISH).
    before = commandstats(r)
    for ws in sockets[:100]:
        await ws.send(
            orjson.dumps({"op": "publish", "channel": "room:presence", "type": "typing",
                          "data": {}}).decode()
        )  # fmt: skip
    await asyncio.sleep(1)
    calls = diff(commandstats(r), before)
    figures["typing_signal"] = {"commands_per_signal": per(calls, 100)}
    before = commandstats(r)
    for ws in sockets:
        await ws.close()
    # The leave is announced by the reaper once the grace (FOURCAST_PRESENCE_GRACE, 5 s) is over.
    await asyncio.sleep(7)
    calls = diff(commandstats(r), before)
    figures["presence_disconnect"] = {"commands_per_person": per(calls, people)}

    # Idle memory per connection on a node: 1,000 WebSockets, then 1,000 SSE streams.
    proc = psutil.Process(stack.node_pid(1))
    for transport in ("websocket", "sse"):
        conns = 1000
        await asyncio.sleep(1)
        rss0 = proc.memory_info().rss
        held: list[Any] = []
        if transport == "websocket":
            for i in range(conns):
                held.append(await subscribe_ws(stack.url(1), f"public:idle-{i % 100}"))
        else:
            for i in range(conns):
                reader, writer = await asyncio.open_connection("127.0.0.1", stack.node_ports[1])
                writer.write(
                    f"GET /api/channels/public:idle-{i % 100}/stream HTTP/1.1\r\n"
                    f"Host: x\r\nAccept: text/event-stream\r\n\r\n".encode()
                )
                await asyncio.wait_for(reader.readuntil(b"retry:"), 10)
                held.append(writer)
        await asyncio.sleep(2)
        rss1 = proc.memory_info().rss
        figures[f"idle_{transport}"] = {
            "connections": conns,
            "rss_before_mb": round(rss0 / 2**20, 1),
            "rss_after_mb": round(rss1 / 2**20, 1),
            "kib_per_connection": round((rss1 - rss0) / conns / 1024, 1),
        }
        for h in held:
            if transport == "websocket":
                await h.close()
            else:
                h.close()
    figures["node_idle_rss_mb"] = round(
        psutil.Process(stack.node_pid(0)).memory_info().rss / 2**20, 1
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fourcast-measure-"))
    stack = Stack(root)
    try:
        stack.start()
        figures = asyncio.run(asyncio.wait_for(measure(stack), 300))
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
