"""fourcast itself, as the bench starts it: the launch, the backend and the settings it runs with."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.procstat import ROOT
from bench.servers.process import Process
from bench.servers.redis_server import RedisServer

LAUNCHES = ("python -m app", "uvicorn")


LOAD_LIMITS = {
    "FOURCAST_MAX_CONNECTIONS_PER_IP": "100000",
    "FOURCAST_MAX_CONNECTIONS": "100000",
    "FOURCAST_MAX_CONNECTIONS_PER_USER": "100000",
    # One load generator signs in every guest reader from one address: lift the per-address
    # sign-up budget, which exists for hostile clients, not this load.
    "FOURCAST_SIGNUP_RATE": "100000",
    "FOURCAST_SIGNUP_BURST": "100000",
    "FOURCAST_READ_ALL_RATE": "100000",
    "FOURCAST_READ_ALL_BURST": "100000",
    # Every guest reader of room:bench is present there, all from the load generator's address.
    "FOURCAST_MAX_PRESENCE_PER_ADDRESS": "100000",
}
"""The limits a benchmark's load lifts, on every fourcast server a benchmark starts (`make
bench`'s and `python -m bench ab`'s): they exist for hostile clients, and one load generator
on one address is not one."""


@dataclass
class Server(Process):
    """fourcast, started as `python -m app` or as plain `uvicorn app.main:app`, on the in-memory
    backend or on Redis (a redis-server of its own, started and stopped with it)."""

    name = "fourcast"
    source: Path | None = None  # where app/ is imported from (default: the work tree)
    launch: str = "python -m app"
    backend: str = "memory"
    redis: RedisServer | None = None

    def start(self) -> Server:
        if self.backend == "redis":
            # The node's core is the server's; redis-server runs beside it, unpinned (its CPU is
            # reported apart: the targets compare the node's cost).
            self.redis = RedisServer(core=None, nice=self.nice).start()
        try:
            super().start()
        except BaseException:
            if self.redis is not None:
                self.redis.stop()
            raise
        return self

    def stop(self) -> None:
        super().stop()
        if self.redis is not None:
            self.redis.stop()
            self.redis = None

    def describe(self) -> dict[str, str]:
        return {"server": self.name, "launch": self.launch, "backend": self.backend}

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        assert self.data_dir is not None
        self.settings = {
            "FOURCAST_DATA_DIR": str(self.data_dir),
            "FOURCAST_API_KEYS": f"bench:{self.api_key}",
            **LOAD_LIMITS,
            # A configured secret, as any node on Redis needs (a generated one is refused there).
            "FOURCAST_SECRET_KEY": self.secret,
            **({"FOURCAST_REDIS_URL": self.redis.url} if self.redis is not None else {}),
            # BENCH_FOURCAST_X=v sets FOURCAST_X=v on the server (e.g. to measure a setting).
            **{
                k.removeprefix("BENCH_"): v
                for k, v in os.environ.items()
                if k.startswith("BENCH_FOURCAST_")
            },
            **self.env,
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOURCAST_")}
        env.update(self.settings)
        where = ("--host", "127.0.0.1", "--port", str(self.port))
        if self.launch == "uvicorn":
            # Plain `uvicorn app.main:app` as FastAPI users start it: no flags but where to listen.
            argv = [sys.executable, "-m", "uvicorn", "app.main:app", *where]
        else:
            argv = [
                sys.executable,
                "-m",
                "app",
                *where,
                "--no-access-log",
                "--log-level",
                "warning",
            ]
        return argv, env, self.source or ROOT
