"""Cluster fixtures: several real `python -m app` processes sharing the suite's redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.bus.redis.streams import EPOCH_LIMIT
from tests.fixtures.ports import free_port
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.redis import RedisServer
from tests.fixtures.server import ServerProcess, Servers


@dataclass
class Cluster:
    a: ServerProcess
    b: ServerProcess
    servers: Servers

    @property
    def nodes(self) -> tuple[ServerProcess, ServerProcess]:
        return self.a, self.b

    @property
    def urls(self) -> list[str]:
        return [self.a.url, self.b.url]

    def assert_alive(self) -> None:
        for node in self.nodes:
            assert node.process is not None
            assert node.process.poll() is None, f"node {node.url} died:\n{node.log()[-3000:]}"


def start_cluster(root: Path, redis_url: str, **settings: object) -> Cluster:
    servers = Servers(root)
    try:
        a = servers.start(redis_url=redis_url, **settings)
        b = servers.start(redis_url=redis_url, **settings)
    except BaseException:
        servers.stop_all()
        raise
    return Cluster(a, b, servers)


HIGH = EPOCH_LIMIT - 4096
"""The epoch in force at first: one drawn at random from the whole range is above it only with a
probability of about 6e-5."""


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to flush or restart empty, whose epoch is HIGH."""
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory, free_port())
    server.start()
    with server.client() as client:
        run_id = client.info("server")["run_id"]
        client.set("fourcast:epoch", f"{HIGH}:{run_id}")
    yield server
    server.stop()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    """Servers started by one test, stopped at its end."""
    started = Servers(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def shared_redis(redis_server: RedisServer) -> str:
    """The session's redis-server, running; module-scoped clusters use unique channel names
    instead of flushing it under running nodes."""
    redis_server.thaw()
    redis_server.start()
    return redis_server.url


@pytest.fixture(scope="module")
def cluster(shared_redis: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two nodes on one Redis, each with its own SQLite file (service publishers, anonymous
    readers of public: channels: nothing that needs shared SQL rows)."""
    nodes = start_cluster(tmp_path_factory.mktemp("cluster"), shared_redis)
    yield nodes
    nodes.servers.stop_all()


@pytest.fixture(scope="module")
def people_settings() -> dict[str, object]:
    return {
        "presence_lease": 2,
        "typing_throttle": 1,
        "typing_expiry": 2,
        "publish_rate": 1,
        "publish_burst": 10,
    }


@pytest.fixture(scope="module")
def people_cluster(
    shared_redis: str,
    postgres_server: PostgresServer,
    people_settings: dict[str, object],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """Two nodes on one Redis and one PostgreSQL database: people, rooms and notifications are
    shared, as in a real deployment."""
    database = postgres_server.create_database("cluster")
    nodes = start_cluster(
        tmp_path_factory.mktemp("people"),
        shared_redis,
        database_url=database,
        **people_settings,
    )
    yield nodes
    nodes.servers.stop_all()
