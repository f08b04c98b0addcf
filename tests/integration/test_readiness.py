"""`/readyz` tells whether the journal can keep a batch, not only whether SQLite answers a SELECT.

The disk is a real, small tmpfs filled with a file, as a full disk is in production: publishes get
503 and readiness says so, and once the file is gone readiness says ready again with no publish in
between (a node taken out of the load balancer gets no traffic to clear it).
"""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import ServerFactory

CHANNEL = "/api/channels/public:disk/events"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs (root only: skipped where mounting is not allowed)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)


def _fill(path: Path) -> None:
    """Write zeros until the disk refuses (ENOSPC), as `dd if=/dev/zero` does."""
    with path.open("wb", buffering=0) as out:
        block = bytes(64 << 10)
        with contextlib.suppress(OSError):
            while True:
                out.write(block)
        with contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 512)
    with pytest.raises(OSError) as full, path.with_suffix(".more").open("wb", buffering=0) as f:
        f.write(block)
    assert full.value.errno == errno.ENOSPC


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
def test_readiness_says_unavailable_while_the_disk_is_full_and_ready_once_freed(
    small_disk: Path, start_server: ServerFactory, launch: str
) -> None:
    server = start_server(data_dir=small_disk / "data", launch=launch)
    with httpx.Client(base_url=server.url, headers=server.service_headers, timeout=30) as client:
        assert client.post(CHANNEL, json={"type": "t", "data": 1}).status_code == 201
        assert client.get("/readyz").status_code == 200
        filler = small_disk / "filler"
        _fill(filler)
        refused = client.post(CHANNEL, json={"type": "t", "data": "x" * 50_000})
        assert refused.status_code == 503, refused.text
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert "database" in ready.json()["problems"]
        assert client.get("/readyz").status_code == 503  # it stays so while the disk is full

        filler.unlink()
        small_disk.joinpath("filler.more").unlink(missing_ok=True)
        assert client.get("/readyz").status_code == 200  # no publish needed to clear it
        assert client.post(CHANNEL, json={"type": "t", "data": 2}).status_code == 201
