"""What every measured server process shares: start on a free port with its own temp dir, wait
until it serves, stop it."""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.servers.launch import free_port, nice_command, pin_command, raise_nofile

STARTUP_TIMEOUT = 30.0


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
