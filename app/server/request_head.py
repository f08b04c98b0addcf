"""What the quick lane's protocol reads of a request head and its pipeline, on every request."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding"})
"""The lane takes only requests without a body: nothing is left to read once it has one."""
FORWARDED = frozenset({b"x-forwarded-for"})


def has_any(headers: list[tuple[bytes, bytes]], names: frozenset[bytes]) -> bool:
    # A loop, not any() over a generator: this runs for every request, and it is faster.
    for name, _ in headers:  # noqa: SIM110
        if name in names:
            return True
    return False


def queued(pipeline: Iterable[tuple[Any, Any]], cycle: Any) -> bool:
    """Whether `cycle` waits in the pipeline (at most `http_max_pipelined` entries)."""
    for waiting, _ in pipeline:  # noqa: SIM110
        if waiting is cycle:
            return True
    return False
