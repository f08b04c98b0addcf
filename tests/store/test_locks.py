"""One journal, one writer; and nodes that start together all come up.

Without Redis the in-process bus orders events, so a second process on the same journal (a second
`python -m app` on one data directory, `uvicorn --workers 2`, two nodes on one PostgreSQL database)
must refuse to start, naming FOURCAST_REDIS_URL. Migrations run under a lock, so any number of
processes may start at the same instant on a fresh database.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.lifecycle import build_services
from app.settings import Settings
from app.store.db import create_engine
from app.store.locks import JournalInUse, WriterLock
from app.store.migrate import upgrade_to_head
from tests.clients import eventually
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.server import ROOT, ServerFactory, ServerProcess, free_port

ROUNDS = 5
NODES = 4


def _second(first: ServerProcess) -> ServerProcess:
    """A process with the first one's settings and data directory, on another port."""
    return ServerProcess(free_port(), dict(first.env), first.data_dir)


def _refused(process: ServerProcess) -> str:
    with pytest.raises(RuntimeError, match="exited at start-up") as info:
        process.start()
    assert process.process is not None and process.process.returncode != 0
    assert "FOURCAST_REDIS_URL" in str(info.value), str(info.value)[-3000:]
    return str(info.value)


async def _publish_and_read(url: str, headers: dict[str, str], count: int) -> list[int]:
    """Publish `count` events, each over a new connection; return every status code."""
    statuses = []
    for n in range(count):
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
            response = await client.post(
                "/api/channels/public:workers/events", json={"type": "seq", "data": {"n": n}}
            )
            statuses.append(response.status_code)
    return statuses


async def _histories(url: str, tries: int) -> set[tuple[str, ...]]:
    """The channel's history as seen over `tries` new connections (each may reach any worker)."""
    seen = set()
    for _ in range(tries):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            response = await client.get(
                "/api/channels/public:workers/events", params={"after": "0", "limit": 1000}
            )
            assert response.status_code == 200, response.text
            seen.add(tuple(e["id"] for e in response.json()["events"]))
    return seen


def test_a_second_process_on_one_sqlite_journal_refuses_to_start(
    start_server: ServerFactory,
) -> None:
    first = start_server()
    _refused(_second(first))
    # The first one is unharmed and still the only writer.
    response = httpx.post(
        f"{first.url}/api/channels/public:one/events",
        json={"type": "seq", "data": {}},
        headers=first.service_headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    first.kill()  # kill -9 releases the lock: a new process may take over the journal
    successor = _second(first)
    try:
        successor.start()
    finally:
        successor.stop()


def test_a_second_process_on_one_postgres_journal_refuses_to_start(
    start_server: ServerFactory, fresh_postgres_url: str
) -> None:
    first = start_server(database_url=fresh_postgres_url)
    other = start_server.__self__.root / "other"  # type: ignore[attr-defined]
    other.mkdir()
    second = ServerProcess(free_port(), {**first.env, "FOURCAST_DATA_DIR": str(other)}, other)
    _refused(second)


async def test_writer_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    path = tmp_path / "fourcast.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        lock = await WriterLock.acquire(engine, path)
        with pytest.raises(JournalInUse, match="FOURCAST_REDIS_URL"):
            await WriterLock.acquire(engine, path)
        await lock.release()
        await (await WriterLock.acquire(engine, path)).release()
    finally:
        await engine.dispose()


def _uvicorn(tmp_path: Path, workers: int, **settings: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOURCAST_")}
    env.update(
        {
            "FOURCAST_DATA_DIR": str(tmp_path / "data"),
            "FOURCAST_API_KEYS": "tests:test-service-key-0123456789",
            "FOURCAST_SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
            **{f"FOURCAST_{k.upper()}": v for k, v in settings.items()},
        }
    )
    with (tmp_path / "uvicorn.log").open("ab") as log:  # the child keeps its own copy
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:app",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}"


async def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    async def ready() -> None:
        while True:
            assert process.poll() is None, "uvicorn exited"
            try:
                async with httpx.AsyncClient(timeout=1) as client:
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)

    await asyncio.wait_for(ready(), 30)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


HEADERS = {"Authorization": "Bearer test-service-key-0123456789"}


async def test_uvicorn_workers_without_redis_leave_one_writer(tmp_path: Path) -> None:
    process, url = _uvicorn(tmp_path, 2)
    log = tmp_path / "uvicorn.log"
    try:

        async def refused() -> bool:
            return "FOURCAST_REDIS_URL" in log.read_text(errors="replace")

        await eventually(refused, timeout=30)
        # The second worker refused at start-up. Depending on its version and timing, uvicorn
        # then stops altogether, or goes on with the one worker holding the journal: either way
        # never two writers. While it serves, every publish is kept in one history.
        try:
            await _wait_ready(url, process)
            statuses = await _publish_and_read(url, HEADERS, 20)
            histories = await _histories(url, 10)
        except (httpx.TransportError, AssertionError):
            await asyncio.to_thread(process.wait, 30)  # it was stopping: it must have stopped
            return
        assert statuses == [201] * 20
        assert histories == {tuple(str(n) for n in range(1, 21))}, histories
    finally:
        await asyncio.to_thread(_stop, process)


@pytest.mark.redis
async def test_uvicorn_workers_with_redis_serve_one_history(tmp_path: Path, redis_url: str) -> None:
    process, url = _uvicorn(tmp_path, 2, redis_url=redis_url)
    try:
        await _wait_ready(url, process)
        assert await _publish_and_read(url, HEADERS, 20) == [201] * 20
        histories = await _histories(url, 10)
        # One history, whichever worker answers (cursors carry the Redis epoch).
        assert len(histories) == 1 and len(next(iter(histories))) == 20, histories
        assert "FOURCAST_REDIS_URL" not in (tmp_path / "uvicorn.log").read_text(errors="replace")
    finally:
        await asyncio.to_thread(_stop, process)


def _start_node(settings: Settings, go: Any) -> None:
    """A node's start-up path, in a forked process (cheap: the app is already imported): wait for
    the shared start signal, build the services (migrating the database), start the bus, pass
    every readiness check, stop. Exit status 0 only if all of it worked."""
    status = 1
    try:
        go.wait(60)

        async def run() -> None:
            services = await build_services(settings)
            await services.bus.start()
            try:
                for _, check in services.checks:
                    await check()
            finally:
                await services.bus.stop()
                for close in services.closers:
                    await close()
                await services.engine.dispose()
                await services.shared.close()

        asyncio.run(run())
        status = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(status)


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_nodes_started_at_the_same_instant_on_a_fresh_database_are_all_healthy(
    kind: str, tmp_path: Path, redis_url: str, request: pytest.FixtureRequest
) -> None:
    context = multiprocessing.get_context("fork")
    for round_ in range(ROUNDS):
        if kind == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / str(round_) / 'fourcast.db'}"
        else:
            server: PostgresServer = request.getfixturevalue("postgres_server")
            url = server.create_database("race")
        go = context.Event()
        nodes = [
            context.Process(
                target=_start_node,
                args=(
                    Settings(
                        database_url=url,
                        redis_url=redis_url,
                        data_dir=tmp_path / f"node{i}",
                        secret_key="test-secret-key-that-is-long-enough-0123456789",
                    ),
                    go,
                ),
            )
            for i in range(NODES)
        ]
        for node in nodes:
            node.start()
        go.set()  # all at the same instant
        for node in nodes:
            node.join(120)
        assert [node.exitcode for node in nodes] == [0] * NODES, f"round {round_}"


async def test_migrating_twice_in_one_process_is_harmless(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fourcast.db'}"
    await asyncio.gather(upgrade_to_head(url), upgrade_to_head(url))
