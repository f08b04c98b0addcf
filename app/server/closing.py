"""A connection answering a request when the server shuts down: the requests queued behind it
are answered 503, never dropped unanswered.

uvicorn's `shutdown` marks the connection's newest request `keep_alive = False`, so the
connection closes once that one is answered. A request read after that (the client pipelined it
while the one ahead was still being answered) is queued behind it and dropped when the connection
closes: the client sees the close with no answer and cannot tell whether it was processed (a
publish). Here the connection instead finishes the response it is writing, then answers each
request still queued `503 unavailable` with `Retry-After` (the last with `Connection: close`),
and closes. Nothing is added to the per-request path: at shutdown the connection switches to a
subclass of its own class (same layout, as app/server/quick_adopt.py switches classes) whose
`on_response_complete` does this.
"""

from __future__ import annotations

import logging
from typing import Any

from .refusals import RESTARTING, RESTARTING_LAST

log = logging.getLogger(__name__)

_closing_classes: dict[type, type] = {}


def shut_down(protocol: Any) -> None:
    """uvicorn's `HttpToolsProtocol.shutdown`, less the loss of what is queued."""
    cycle = protocol.cycle
    if cycle is None or cycle.response_complete:
        protocol.transport.close()  # nothing being answered (as uvicorn)
        return
    protocol.__class__ = _closing_class(type(protocol))
    # uvicorn's cycles call the `on_response_complete` bound when they were made: those known
    # are pointed at the new one (the lane's call the protocol's). One being answered ahead of
    # a queue and not known here runs the old one, which starts the next: that one calls this.
    ahead = protocol.response_ahead()
    for known in (cycle, ahead, *(queued for queued, _ in protocol.pipeline)):
        if known is not None and hasattr(known, "on_response"):
            known.on_response = protocol.on_response_complete


def _closing_class(cls: type) -> type:
    closing = _closing_classes.get(cls)
    if closing is None:
        body = {
            "__slots__": (),
            "on_response_complete": _answer_queued_and_close,
            "shutdown": lambda self: None,  # already shutting down
            "closes_when_answered": True,
        }
        closing = _closing_classes[cls] = type(f"Closing{cls.__name__}", (cls,), body)
    return closing


def _answer_queued_and_close(protocol: Any) -> None:
    """A response is complete: each request still queued gets its 503, then the close."""
    protocol.server_state.total_requests += 1
    transport = protocol.transport
    queued = len(protocol.pipeline)
    protocol.pipeline.clear()
    if transport.is_closing():
        return
    if queued:
        log.warning("answering %d request(s) queued at shutdown: 503", queued)
        transport.write(RESTARTING * (queued - 1) + RESTARTING_LAST)
    transport.close()


__all__ = ["shut_down"]
