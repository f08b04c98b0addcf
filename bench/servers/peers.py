"""The peers fourcast is compared with: Nchan (nginx) and the floor app (bench/peers/)."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.procstat import ROOT
from bench.servers.process import Process

PEERS = Path(__file__).resolve().parent.parent / "peers"


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
            # Stopped with long polls still waiting, it would wait for them (up to `stop`'s 15 s
            # before a kill): only its shutdown changes, nothing it serves.
            *("--timeout-graceful-shutdown", "1"),
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
