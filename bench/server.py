"""Start a fourcast server for a scenario: its own process, a free port, a temp data dir, core 0."""

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
class Server:
    """One running server; `settings` are the FOURCAST_* values it was started with."""

    env: dict[str, str] = field(default_factory=dict)
    core: int | None = 0
    nice: int = 0
    source: Path | None = None  # where app/ is imported from (default: the work tree)
    port: int = 0
    api_key: str = ""
    proc: subprocess.Popen[bytes] | None = None
    data_dir: Path | None = None
    settings: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None

    def start(self) -> Server:
        self.port = free_port()
        self.api_key = secrets.token_urlsafe(24)
        self.data_dir = Path(tempfile.mkdtemp(prefix="fourcast-bench-"))
        self.settings = {
            "FOURCAST_DATA_DIR": str(self.data_dir),
            "FOURCAST_API_KEYS": f"bench:{self.api_key}",
            "FOURCAST_MAX_CONNECTIONS_PER_IP": "100000",
            "FOURCAST_MAX_CONNECTIONS": "100000",
            "FOURCAST_MAX_CONNECTIONS_PER_USER": "100000",
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
        cmd = [
            *nice_command(self.nice),
            *pin_command(self.core),
            sys.executable,
            "-m",
            "app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        self.log_path = self.data_dir / "server.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.source or ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_nofile,
        )
        log.close()
        self._wait_ready()
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

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited at start-up:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(
                        b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                    )
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready within {STARTUP_TIMEOUT} s:\n{self.log_tail()}")

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

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
