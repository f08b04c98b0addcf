"""Process CPU and memory from /proc, and the machine and versions a result was measured on."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds(pid: int | str = "self") -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def system_seconds(pid: int | str = "self") -> float:
    """stime alone: the kernel's share (socket system calls, TCP on loopback)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return int(stat[stat.rindex(b")") + 2 :].split()[12]) / CLK_TCK


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (nginx's worker under its master), read from /proc."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in task.read_text().split()]
    return found


def tree_seconds(pids: list[int]) -> tuple[float, float]:
    """(utime+stime, stime) summed over `pids`; a process that is gone counts 0."""
    total = kernel = 0.0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        kernel += int(fields[12]) / CLK_TCK
    return total, kernel


def core_busy_seconds(core: int) -> float | None:
    """Everything core `core` did (user, system, irq, softirq, steal), from /proc/stat: what a
    pinned server costs its core, including kernel work no process is charged for."""
    name = f"cpu{core}".encode()
    with open("/proc/stat", "rb") as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] == name:
                user, nice, system, _idle, _iowait, irq, softirq, steal = (
                    int(x) for x in fields[1:9]
                )
                return (user + nice + system + irq + softirq + steal) / CLK_TCK
    return None


def core_irq_seconds(core: int) -> float | None:
    """Time core `core` spent in interrupts and softirqs (/proc/stat, tick-sampled): an upper
    bound on the kernel work done there that no process may have been charged for."""
    name = f"cpu{core}".encode()
    with open("/proc/stat", "rb") as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] == name:
                return (int(fields[6]) + int(fields[7])) / CLK_TCK
    return None


def kernel_threads(core: int) -> list[int]:
    """The per-core kernel threads that do network work on a core's behalf (ksoftirqd/N and the
    kworkers bound to it): loopback TCP deferred out of the sender's system call runs there."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_bytes()
        except OSError:
            continue
        name = text[text.index(b"(") + 1 : text.rindex(b")")]
        if name == f"ksoftirqd/{core}".encode() or name.startswith(f"kworker/{core}:".encode()):
            pids.append(int(stat.parent.name))
    return pids


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size (VmRSS) in KiB."""
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE_KIB


def tree_rss_kib(pids: list[int]) -> int:
    """Resident memory of a process tree (nginx's master and worker), in KiB."""
    total = 0
    for p in pids:
        with contextlib.suppress(OSError):
            total += rss_kib(p)
    return total


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "memory_mb": round(mem_kib / 1024),
        "loadavg_at_start": list(os.getloadavg()),
    }


def git_rev(rev: str = "") -> str:
    """The work tree's revision (`-dirty` when app/ has uncommitted changes), or that of `rev`."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", rev or "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        if rev:
            return out
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "app"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "websockets",
    "sse-starlette",
    "orjson",
    "pydantic",
    "sqlalchemy",
    "aiosqlite",
    "aiohttp",
    "picows",
)


def versions() -> dict[str, str]:
    found: dict[str, str] = {"python": sys.version.split()[0], "fourcast": git_rev()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "-"
    for deb in ("nginx-light", "libnginx-mod-nchan", "redis-server"):
        try:
            found[deb] = (
                subprocess.run(
                    ["dpkg-query", "-W", "-f=${Version}", deb],
                    capture_output=True,
                    text=True,
                    timeout=5,
                ).stdout.strip()
                or "-"
            )
        except (OSError, subprocess.SubprocessError):
            found[deb] = "-"
    return found
