"""The Redis backend (backend.py) and what it is made of: its connections and fail-fast commands
(connections.py), streams and cursors (streams.py), the epoch that keeps cursors unique through
data loss (epoch.py), reads (reads.py), the live path (live.py) and idempotent publishes shared by
every node (idempotency.py)."""

from __future__ import annotations

from .backend import RedisBackend
from .idempotency import RedisIdempotencyStore

__all__ = ["RedisBackend", "RedisIdempotencyStore"]
