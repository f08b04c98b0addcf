"""What the app keeps in `app.state`, as seen by the server's protocols, which are handed the app
wrapped in whatever uvicorn added (its proxy-headers middleware, a message logger)."""

from __future__ import annotations

from typing import Any

WRAPPERS = 8
"""How many wrappers deep the app is looked for: uvicorn adds at most a few."""


def find_state(app: Any, name: str) -> Any:
    """`app.state.<name>` of the first app in the chain of wrappers that has it, else None."""
    for _ in range(WRAPPERS):
        value = getattr(getattr(app, "state", None), name, None)
        if value is not None:
            return value
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None
