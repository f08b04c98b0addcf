"""What a quick-lane connection finds at its start (app/server/quick.py, and adopted ones in
app/server/quick_adopt.py): the app's quick lane, and what every connection of its server shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .app_state import find_state
from .deadlines import Deadlines
from .sweep import Sweep, server_sweep

if TYPE_CHECKING:
    from .quick_request import QuickRequest

QuickLane = Callable[["QuickRequest"], bool]


def server_parts(protocol: HttpToolsProtocol) -> tuple[Sweep[Any], Deadlines]:
    """What every quick-lane connection of a server shares: the sweep that closes idle
    kept-alive connections, and the deadlines (made with the server's first connection)."""
    return server_sweep(protocol.server_state, "idle", close_idle), Deadlines.of(protocol)


def find_quick_lane(app: Any) -> QuickLane | None:
    """The app's `state.quick_lane`, looking through the wrappers uvicorn may have added."""
    lane: QuickLane | None = find_state(app, "quick_lane")
    return lane


def close_idle(protocol: HttpToolsProtocol) -> None:
    protocol.timeout_keep_alive_handler()


def proxy_trusted(app: Any, client: tuple[str, int] | None) -> bool:
    """Whether a proxy-headers middleware in front of the app (uvicorn's, on by default) takes
    X-Forwarded-For from this peer. Not telling counts as yes: such requests then take the
    ASGI path, where the middleware itself decides."""
    for _ in range(8):
        hosts = getattr(app, "trusted_hosts", None)
        if hosts is not None:
            try:
                return client is None or client[0] in hosts
            except Exception:
                return True
        app = getattr(app, "app", None)
        if app is None:
            return False
    return True
