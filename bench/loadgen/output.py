"""What the load generator reports: progress lines on stderr, and the fields every result row
starts with."""

from __future__ import annotations

import sys
from typing import Any


def log(*parts: object) -> None:
    print("[loadgen]", *parts, file=sys.stderr, flush=True)


def row(spec: dict[str, Any], **fields: Any) -> dict[str, Any]:
    base = {
        "transport": spec["transport"],
        "kind": spec["kind"],
        "subscribers": spec.get("subscribers", 0),
    }
    base.update(fields)
    return base
