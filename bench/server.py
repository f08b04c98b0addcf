"""Start the server a scenario measures (fourcast, or a peer: Nchan, the floor app), each in its own
process on a free port with a temp dir, pinned to core 0; and the redis-server of the Redis backend."""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procstat import ROOT

PEERS = Path(__file__).resolve().parent / "peers"
LAUNCHES = ("python -m app", "uvicorn")

STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin_command(core: int | None) -> list[str]:
    """`taskset -c CORE` when there is such a core and taskset exists, else nothing."""
    if core is None or shutil.which("taskset") is None or (os.cpu_count() or 1) <= core:
        return []
    return ["taskset", "-c", str(core)]


def nice_command(nice: int) -> list[str]:
    """`nice -n N` (a negative N needs root): keeps other work on the machine from disturbing a run."""
    if not nice or shutil.which("nice") is None:
        return []
    return ["nice", "-n", str(nice)]


def raise_nofile() -> None:
    """Raise the soft open-files limit to the hard one (run in the child before exec)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def export_head(rev: str = "HEAD") -> Path:
    """The committed server code (app/, alembic/) in a temp dir: a run then measures exactly that
    revision, unaffected by half-done edits in the work tree."""
    dest = Path(tempfile.mkdtemp(prefix="fourcast-bench-src-"))
    archive = subprocess.run(
        ["git", "archive", rev, "app", "alembic", "alembic.ini"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


@dataclass
class Process:
    """One server process: started on a free port with its own temp dir, stopped with SIGINT."""

    name = "process"
    env: dict[str, str] = field(default_factory=dict)
    core: int | None = 0
    nice: int = 0
    port: int = 0
    api_key: str = ""
    proc: subprocess.Popen[bytes] | None = None
    data_dir: Path | None = None
    settings: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        """(argv, environment, working directory) of the server."""
        raise NotImplementedError

    def start(self) -> Process:
        self.port = free_port()
        self.api_key = secrets.token_urlsafe(24)
        self.secret = secrets.token_urlsafe(48)
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"fourcast-bench-{self.name}-"))
        argv, env, cwd = self.command()
        self.log_path = self.data_dir / "server.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [*nice_command(self.nice), *pin_command(self.core), *argv],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_nofile,
        )
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def public_settings(self) -> dict[str, str]:
        """The settings, with the API key hidden."""
        return {
            k: ("bench:***" if k == "FOURCAST_API_KEYS" else v) for k, v in self.settings.items()
        }

    def describe(self) -> dict[str, str]:
        """What the result rows say about this server."""
        return {"server": self.name}

    def ready_probe(self) -> tuple[bytes, bytes]:
        """(request, expected start of the answer) that says the server is serving."""
        return (
            b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            b"HTTP/1.1 200",
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        request, expect = self.ready_probe()
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(request)
                    if s.recv(64).startswith(expect):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready within {STARTUP_TIMEOUT} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def __enter__(self) -> Process:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
            "FOURCAST_MAX_CONNECTIONS_PER_IP": "100000",
            "FOURCAST_MAX_CONNECTIONS": "100000",
            "FOURCAST_MAX_CONNECTIONS_PER_USER": "100000",
            # One load generator signs in every guest reader from one address: lift the
            # per-address sign-up budget, which exists for hostile clients, not this load.
            "FOURCAST_SIGNUP_RATE": "100000",
            "FOURCAST_SIGNUP_BURST": "100000",
            "FOURCAST_READ_ALL_RATE": "100000",
            "FOURCAST_READ_ALL_BURST": "100000",
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


@dataclass
class FloorServer(Process):
    """The floor: the naive Starlette app in bench/peers/floor_app.py, run by uvicorn with the
    fast options (uvloop, httptools, sans-I/O websockets), as its README says."""

    name = "floor"

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        argv = [
            sys.executable,
            *("-m", "uvicorn", "--app-dir", str(PEERS), "floor_app:app"),
            *("--loop", "uvloop", "--http", "httptools", "--ws", "websockets-sansio"),
            *("--host", "127.0.0.1", "--port", str(self.port)),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOURCAST_")}
        return argv, env, ROOT

    def ready_probe(self) -> tuple[bytes, bytes]:
        req = b"GET /api/channels/public:ready/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        return req, b"HTTP/1.1 200"


NGINX = "/usr/sbin/nginx"
NCHAN_MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")


def nchan_installed() -> bool:
    return Path(NGINX).exists() and NCHAN_MODULE.exists()


@dataclass
class NchanServer(Process):
    """Nchan (nginx's pub/sub module, one worker) with bench/peers/nchan.conf on a free port.
    Its CPU is the master's and the worker's (bench/procstat.tree)."""

    name = "nchan"

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        assert self.data_dir is not None
        if not nchan_installed():
            raise RuntimeError(
                "Nchan is not installed: apt-get install nginx-light libnginx-mod-nchan"
            )
        conf = (PEERS / "nchan.conf").read_text().replace("@PORT@", str(self.port))
        (self.data_dir / "nchan.conf").write_text(conf)
        (self.data_dir / "tmp").mkdir()
        self.data_dir.chmod(0o755)  # the worker runs as nobody
        prefix = f"{self.data_dir}/"
        argv = [NGINX, "-p", prefix, "-c", "nchan.conf", "-e", f"{prefix}error.log"]
        return argv, dict(os.environ), self.data_dir

    def ready_probe(self) -> tuple[bytes, bytes]:
        req = b"GET /poll?id=ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        return req, b"HTTP/1.1 304"

    def stop(self) -> None:
        # nginx's fast shutdown is SIGTERM (SIGINT too); the worker exits with the master.
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        super().stop()


SERVERS: dict[str, type[Process]] = {"fourcast": Server, "nchan": NchanServer, "floor": FloorServer}


def make_server(spec: dict[str, object], **common: object) -> Process:
    """The server a scenario spec names (`server`, and for fourcast `launch` and `backend`)."""
    kind = str(spec.get("server", "fourcast"))
    if kind == "fourcast":
        return Server(
            launch=str(spec.get("launch", "python -m app")),
            backend=str(spec.get("backend", "memory")),
            **common,  # type: ignore[arg-type]
        )
    common.pop("source", None)
    common.pop("env", None)
    return SERVERS[kind](**common)  # type: ignore[arg-type]
