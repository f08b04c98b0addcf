"""Connection-level abuse: silent and slowloris sockets, the socket bound, a too-large body on a
kept-alive connection. On both launch paths: `python -m app`, and `uvicorn app.main:app` given
fourcast's protocol (`--http app.server.quick:QuickHttpToolsProtocol`)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.clients import eventually
from tests.fixtures.server import (
    API_KEY,
    ROOT,
    STARTUP_TIMEOUT,
    ServerFactory,
    ServerProcess,
    free_port,
)

HTTP_PROTOCOL = "app.server.quick:QuickHttpToolsProtocol"


class UvicornProcess(ServerProcess):
    """The same app under the `uvicorn` command line: `http` is uvicorn's `--http` option."""

    http = HTTP_PROTOCOL
    extra: tuple[str, ...] = ()

    def start(self) -> None:
        self.log_path = self.data_dir / f"uvicorn-{self.port}.log"
        command = [sys.executable, "-m", "uvicorn", "app.main:app", "--http", self.http]
        command += ["--port", str(self.port), "--no-access-log", *self.extra]
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited at start-up:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"uvicorn did not start in time:\n{self.log()}")


LAUNCHES = {"uvicorn --http": HTTP_PROTOCOL, "plain uvicorn": "auto"}


@pytest.fixture(params=["python -m app", "uvicorn --http"])
def launch(
    request: pytest.FixtureRequest, start_server: ServerFactory, tmp_path: Path
) -> Iterator[ServerFactory]:
    """Starts a server the way the test's parameter names (plain uvicorn has no head deadline:
    docs/operations.md puts it behind a proxy)."""
    if request.param == "python -m app":

        def start_module(*, extra: tuple[str, ...] = (), **settings: object) -> ServerProcess:
            del extra  # uvicorn command-line options: python -m app takes settings only
            return start_server(**settings)

        yield start_module
        return
    started: list[ServerProcess] = []

    def start(*, extra: tuple[str, ...] = (), **settings: object) -> ServerProcess:
        data = tmp_path / f"uvicorn{len(started)}"
        data.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOURCAST_")}
        env["FOURCAST_DATA_DIR"] = str(data)
        env["FOURCAST_API_KEYS"] = f"tests:{API_KEY}"
        env["FOURCAST_SECRET_KEY"] = "test-secret-key-that-is-long-enough-0123456789"
        env.update({f"FOURCAST_{name.upper()}": str(value) for name, value in settings.items()})
        server = UvicornProcess(free_port(), env, data)
        server.http = LAUNCHES[request.param]
        server.extra = extra
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


async def get(url: str) -> str:
    """GET on a fresh connection; asserts a 200."""
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    return response.text


async def closed_by_server(reader: asyncio.StreamReader) -> None:
    """Returns once the server has closed the connection (EOF or reset)."""
    try:
        while await reader.read(4096):
            pass
    except ConnectionError:
        pass


async def healthy_throughout(url: str, until: Callable[[], Awaitable[None]]) -> int:
    """Checks /healthz on fresh connections until `until` returns; the number of answers."""
    answers = 0
    task = asyncio.ensure_future(until())
    try:
        while not task.done():
            await get(f"{url}/healthz")
            answers += 1
            await asyncio.wait({task}, timeout=0.2)
        await task
    finally:
        task.cancel()
    return answers


async def test_silent_and_slowloris_connections_are_closed_by_the_head_deadline(
    launch: ServerFactory,
) -> None:
    server = launch(http_head_timeout=1)
    silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(200)]
    trickling = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(200)]
    head = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-padding: " + b"a" * 100

    async def trickle(writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> None:
        for byte in head:
            if reader.at_eof() or writer.is_closing():
                return
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                return
            await asyncio.sleep(1)  # the slowloris pace, not a synchronisation

    tricklers = [asyncio.create_task(trickle(w, r)) for r, w in trickling]
    started = time.monotonic()

    async def all_closed() -> None:
        await asyncio.gather(*(closed_by_server(r) for r, _ in silent + trickling))

    # The deadline is 1 s; the bound only limits how long a failure takes to show.
    answers = await asyncio.wait_for(healthy_throughout(server.url, all_closed), timeout=30)
    elapsed = time.monotonic() - started
    assert answers >= 1
    # Trickling one byte a second, the head (120 bytes) would take two minutes to arrive.
    assert elapsed < 20, elapsed
    await asyncio.wait_for(asyncio.gather(*tricklers), timeout=5)
    for _, writer in silent + trickling:
        writer.close()
    metrics = await get(f"{server.url}/metrics")
    assert 'fourcast_sockets_closed_early_total{reason="head_timeout"} 400.0' in metrics, metrics


async def test_socket_bound_evicts_waiting_heads_and_refuses_when_all_are_busy(
    launch: ServerFactory,
) -> None:
    server = launch(http_head_timeout=60, max_open_sockets=40)
    idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(100)]
    # A newcomer closes the oldest socket still waiting for its head: /healthz answers.
    for _ in range(5):
        await get(f"{server.url}/healthz")
    await asyncio.wait_for(asyncio.gather(*(closed_by_server(r) for r, _ in idle[:60])), 10)
    metrics = await get(f"{server.url}/metrics")
    open_sockets = _gauge(metrics, "fourcast_open_sockets")
    assert open_sockets <= 40, metrics
    for _, writer in idle:
        writer.close()

    async def only_the_probe_open() -> bool:
        return _gauge(await get(f"{server.url}/metrics"), "fourcast_open_sockets") == 1

    await eventually(only_the_probe_open)
    # Busy connections (here SSE streams, their heads answered) are never evicted: beyond the
    # bound, a newcomer gets a 503 and the socket is closed.
    busy = []
    for _ in range(40):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /api/channels/public:x/stream HTTP/1.1\r\nhost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200"), head
        busy.append((reader, writer))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 503") and b"too_many_connections" in answer, answer
    for _, writer in busy:
        writer.close()
    # With the streams gone, newcomers are served again.
    await eventually(only_the_probe_open)


def _gauge(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.mark.parametrize("launch", ["python -m app", "plain uvicorn"], indirect=True)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_too_large_body_gets_its_413_on_a_kept_alive_connection(
    launch: ServerFactory, chunked: bool
) -> None:
    server = launch()
    url = f"{server.url}/api/channels/public:big/events"
    body = b'{"type": "x", "data": "' + b"a" * (2 * 1024 * 1024) + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=1)) as client:
        for _ in range(3):
            assert (await client.get(f"{server.url}/healthz")).status_code == 200
        content = chunks() if chunked else body
        headers = {**server.service_headers, "content-type": "application/json"}
        response = await client.post(url, content=content, headers=headers)
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "body_too_large"
        # The whole body was read and dropped: the connection serves the next request.
        assert response.headers.get("connection") != "close"
        assert (await client.get(f"{server.url}/healthz")).status_code == 200


@pytest.mark.parametrize(
    "launch", ["python -m app", "uvicorn --http", "plain uvicorn"], indirect=True
)
async def test_idle_keep_alive_connection_is_closed(launch: ServerFactory) -> None:
    # python -m app reads the setting; the uvicorn command line takes uvicorn's own option.
    server = launch(http_keep_alive=1, extra=("--timeout-keep-alive", "1"))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"connection: close" not in head.lower()
    started = time.monotonic()
    await asyncio.wait_for(closed_by_server(reader), timeout=30)
    # A bound on failure only: keep-alive 1 s, swept once a second.
    assert time.monotonic() - started < 15
    writer.close()


async def test_a_trickled_body_is_closed_by_the_body_deadline(launch: ServerFactory) -> None:
    server = launch(http_body_timeout=1)
    head = (
        b"POST /api/channels/public:x/events HTTP/1.1\r\nhost: x\r\n"
        b"authorization: Bearer %b\r\ncontent-type: application/json\r\n"
        b"content-length: 1000\r\n\r\n" % API_KEY.encode()
    )
    slow = []
    for _ in range(50):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(head)
        await writer.drain()
        slow.append((reader, writer))

    async def trickle(writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> None:
        for _ in range(1000):
            if reader.at_eof() or writer.is_closing():
                return
            try:
                writer.write(b" ")
                await writer.drain()
            except ConnectionError:
                return
            await asyncio.sleep(1)  # the attacker's pace, not a synchronisation

    tricklers = [asyncio.create_task(trickle(w, r)) for r, w in slow]

    async def all_closed() -> None:
        await asyncio.gather(*(closed_by_server(r) for r, _ in slow))

    started = time.monotonic()
    await asyncio.wait_for(healthy_throughout(server.url, all_closed), timeout=30)
    assert time.monotonic() - started < 20  # a 1,000-byte body at 1 byte/s: 16 minutes
    await asyncio.wait_for(asyncio.gather(*tricklers), timeout=5)
    for _, writer in slow:
        writer.close()
    metrics = await get(f"{server.url}/metrics")
    assert 'fourcast_sockets_closed_early_total{reason="body_timeout"} 50.0' in metrics, metrics
    # Closing a request mid-body is not a server error: no traceback per connection.
    assert "Traceback" not in server.log(), server.log()[-3000:]


async def test_a_body_past_the_discard_bound_gets_413_and_a_close(server: ServerProcess) -> None:
    # Declared far over FOURCAST_BODY_DISCARD_BYTES (8 MiB): the server answers at once rather
    # than read it all, and closes the connection.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /api/channels/public:big/events HTTP/1.1\r\nhost: x\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n{" % (1024 * 1024 * 1024)
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head = answer.partition(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 413") and b"connection: close" in head, answer


async def test_a_too_large_body_read_whole_in_one_go_keeps_the_connection(
    server: ServerProcess,
) -> None:
    # A chunked body that arrives whole before the app reads it: nothing is left to drop.
    data = b'{"type": "x", "data": "' + b"a" * (70 * 1024) + b'"}'
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /api/channels/public:big/events HTTP/1.1\r\nhost: x\r\n"
        b"authorization: Bearer %b\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n%x\r\n%b\r\n0\r\n\r\n"
        % (API_KEY.encode(), len(data), data)
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"connection: close" not in head.lower(), head
    writer.close()


async def test_a_too_large_body_announced_with_expect_100_continue_is_never_asked_for(
    server: ServerProcess,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /api/channels/public:big/events HTTP/1.1\r\nhost: x\r\n"
        b"content-type: application/json\r\ncontent-length: 2097152\r\n"
        b"Expect: 100-Continue\r\n\r\n"
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer  # no "100 Continue" first
    assert b"connection: close" in answer.lower(), answer
