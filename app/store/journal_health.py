"""Whether the journal can write now, for `/readyz`.

`SELECT 1` says the database answers, not that a batch can be kept: a full disk refuses every
publish while reads go on. So the journal remembers whether its last batch failed, and while it
did, readiness looks again at what a batch needs, without writing anything (a probe row could fit
in WAL space SQLite reuses while a real batch does not): SQLite's write lock (`BEGIN IMMEDIATE`,
rolled back) and room on the file's disk for twice the failed batch (WAL, then checkpoint) plus a
margin. The failure clears when that look passes or a batch is kept, so the node comes back into
the load balancer once space is freed, with or without traffic.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..bus.backend import BusUnavailable

ROOM_MARGIN = 1 << 20
"""Bytes of free disk wanted beyond twice the failed batch before readiness says it may write."""


class JournalUnwritable(BusUnavailable):
    """The journal's last batch failed, and nothing since shows a batch would be kept now."""


class WriteHealth:
    """The outcome of the journal's last batch (one attribute set per batch: off the hot path)."""

    def __init__(self) -> None:
        self.failure: str | None = None
        """Why the last batch failed (None: it was kept, or a look since says it would be)."""
        self.failed_bytes = 0
        """The size of that batch's data: the room a new one would want."""

    def failed(self, reason: str, size: int) -> None:
        self.failure = reason
        self.failed_bytes = size

    def kept(self) -> None:
        self.failure = None

    def room_wanted(self) -> int:
        return 2 * self.failed_bytes + ROOM_MARGIN


def check_room(path: Path, wanted: int) -> None:
    """Raise JournalUnwritable when the disk under `path` has less than `wanted` bytes free."""
    stats = os.statvfs(path.parent)
    free = stats.f_bavail * stats.f_frsize
    if free < wanted:
        raise JournalUnwritable(f"{free} bytes free beside {path}; a batch wants {wanted}")
