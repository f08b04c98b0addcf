"""Helpers for starting a process to measure: a free port, pinning and niceness, the open-files
limit, and the committed server code to run."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from bench.procstat import ROOT


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
