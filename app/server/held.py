"""Requests still unanswered as the graceful-shutdown timeout nears: answered by fourcast.

After SIGTERM uvicorn waits `timeout_graceful_shutdown` seconds for connections, then cancels
every request task still running, and one whose response has not started (its body still
arriving from a slow client, or its handler still waiting) gets uvicorn's plain-text 500.
Shortly before that, each such request is answered here with fourcast's own 503 (`unavailable`,
with `Retry-After`) and its connection closed: the client is told to come back, as a publish
refused while draining is. The app's task, should it go on, finds its client gone.

Either launch path: the server is uvicorn's `Server`, found through the SIGTERM handler it
installs (`Server.handle_exit`), with its connections and its timeout (plain uvicorn: its
`--timeout-graceful-shutdown`; none, the default, waits for ever and nothing is answered here).
A server that installs no such handler (another ASGI server, a worker class of its own) leaves
those requests to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

MARGIN = 0.5
"""Seconds before uvicorn's timeout the held requests are answered (half the timeout at most):
uvicorn's own wait starts later than the signal, so this is ahead of it."""

Answer = Callable[[], tuple[bytes, list[tuple[bytes, bytes]]]]
"""A fresh answer's body and headers (each a new request id)."""


def uvicorn_server(handler: Any) -> Any | None:
    """The uvicorn `Server` whose `handle_exit` is this signal handler, or None."""
    server = getattr(handler, "__self__", None)
    config = getattr(server, "config", None)
    if hasattr(getattr(server, "server_state", None), "connections") and hasattr(
        config, "timeout_graceful_shutdown"
    ):
        return server
    return None


def answer_when_due(server: Any, answer: Answer) -> asyncio.TimerHandle | None:
    """At SIGTERM: answer the held requests shortly before the server's timeout (None: it has
    none, and waits for them)."""
    timeout = server.config.timeout_graceful_shutdown
    if timeout is None:
        return None
    due = max(timeout / 2, timeout - MARGIN)
    loop = asyncio.get_running_loop()
    return loop.call_later(due, _answer_all, loop, server.server_state.connections, answer)


def _answer_all(loop: asyncio.AbstractEventLoop, connections: Any, answer: Answer) -> None:
    held = [(p, cycle) for p in list(connections) if (cycle := _held_cycle(p)) is not None]
    if held:
        log.warning("answering %d request(s) still held at the shutdown timeout: 503", len(held))
    for protocol, cycle in held:
        # One shutting down (app/server/closing.py) closes once the requests queued behind
        # this one are answered too.
        close = not (getattr(protocol, "closes_when_answered", False) and protocol.pipeline)
        loop.create_task(_answer(cycle, answer, close))


def _held_cycle(protocol: Any) -> Any | None:
    """The HTTP request this connection is answering, if its response has not started."""
    # HTTP connections only (a WebSocket has no cycle); one not uvicorn's own is left alone.
    cycle = getattr(protocol, "cycle", None)
    if getattr(cycle, "response_started", True) or getattr(cycle, "disconnected", True):
        return None
    transport = getattr(protocol, "transport", None)
    if transport is None or transport.is_closing():
        return None
    return cycle


async def _answer(cycle: Any, answer: Answer, close: bool) -> None:
    if cycle.response_started or cycle.disconnected:
        return  # the app answered meanwhile
    body, headers = answer()
    if close:
        cycle.keep_alive = False  # the connection closes once this answer is written
    start = {"type": "http.response.start", "status": 503, "headers": headers}
    await cycle.send(start)
    await cycle.send({"type": "http.response.body", "body": body})


__all__ = ["MARGIN", "answer_when_due", "uvicorn_server"]
