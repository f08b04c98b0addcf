"""The uvicorn internals the fast protocols build on, checked before they are used.

app/server/quick.py, http.py and websocket.py subclass uvicorn's httptools and sans-I/O
WebSocket protocols and use some of their private methods. pyproject.toml pins uvicorn to the
releases this was tested on; should another release be installed anyway, `fast_protocols`
finds what is missing and the server falls back to uvicorn's stock protocols, with one warning
line, rather than failing (or misbehaving) at the first request.
"""

from __future__ import annotations

import functools
import importlib
import logging
from importlib.metadata import PackageNotFoundError, version

log = logging.getLogger(__name__)

TESTED = ((0, 52, 1), (0, 55))
"""uvicorn releases the protocols are tested on: from the first with every internal used (the
sans-I/O protocol's flow control) up to, not including, the next minor release."""

NEEDED: dict[str, tuple[str, ...]] = {
    "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol": (
        "_start_asgi_task",
        "_unset_keepalive_if_required",
        "on_response_complete",
        "on_message_begin",
        "on_headers_complete",
        "on_message_complete",
        "timeout_keep_alive_handler",
        "connection_made",
        "connection_lost",
        "handle_websocket_upgrade",
        "_should_upgrade",
        "_unsupported_upgrade_warning",
        "send_400_response",
    ),
    "uvicorn.protocols.http.httptools_impl:RequestResponseCycle": ("send", "receive"),
    "uvicorn.protocols.http.httptools_impl:STATUS_LINE": (),
    "uvicorn.protocols.utils:ClientDisconnected": (),
    "uvicorn.protocols.websockets.websockets_sansio_impl:WebSocketsSansIOProtocol": (
        "handle_connect",
        "send",
        "pause_writing",
        "resume_writing",
        "schedule_ping",
        "send_keepalive_ping",
        "keepalive_timeout",
        "stop_keepalive",
    ),
}


def _release(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def missing() -> list[str]:
    """What the installed uvicorn lacks of what the fast protocols use ([] when nothing)."""
    try:
        installed = version("uvicorn")
    except PackageNotFoundError:
        return ["uvicorn itself"]
    problems = []
    low, high = TESTED
    if not low <= _release(installed) < high:
        problems.append(f"a tested release (installed {installed})")
    for target, attributes in NEEDED.items():
        module_name, _, name = target.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError):
            problems.append(target)
            continue
        problems += [f"{target}.{a}" for a in attributes if not hasattr(found, a)]
    return problems


@functools.cache
def holds() -> bool:
    """Whether every internal is there (asked per WebSocket by `websocket_adopt.adopt`, so cached)."""
    return not missing()


def fast_protocols(package: str) -> dict[str, str]:
    """uvicorn's `http` and `ws` options: ours when every internal is there, else stock."""
    problems = missing()
    if problems:
        log.warning(
            "fourcast: uvicorn lacks %s; serving with uvicorn's stock protocols (slower)",
            ", ".join(problems),
        )
        return {"http": "httptools", "ws": "auto"}
    return {
        "http": f"{package}.server.quick:QuickHttpToolsProtocol",
        "ws": f"{package}.server.websocket:FramesWebSocketProtocol",
    }
