"""The redis-server that a fourcast server on the Redis backend starts beside itself."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.servers.process import Process


@dataclass
class RedisServer(Process):
    """The Redis backend's redis-server: no persistence, its own temp dir."""

    name = "redis"

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        assert self.data_dir is not None
        argv = [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            *("--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir)),
            *("--save", "", "--appendonly", "no", "--protected-mode", "no"),
        ]
        return argv, dict(os.environ), self.data_dir

    def ready_probe(self) -> tuple[bytes, bytes]:
        return b"PING\r\n", b"+PONG"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"
