"""uvicorn's httptools protocol, plus one ASGI extension: `fourcast.body`.

An SSE stream spends most of its time parked, waiting for the next event; waking its task to
pass one chunk down the middleware chain costs more than the chunk. The extension gives the app a
synchronous `write(chunk) -> bool` for a streaming (chunked) response that has started: it writes
at once if the socket is not paused, and otherwise says no, so the app falls back to ordinary
`http.response.body` messages with their flow control. Any other server simply lacks the key.
"""

from __future__ import annotations

from functools import partial

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

EXTENSION = "fourcast.body"


class FramesHttpToolsProtocol(HttpToolsProtocol):
    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None:
            # The request's task is created but has not run yet, so it sees the key from the start.
            cycle.scope.setdefault("extensions", {})[EXTENSION] = {  # type: ignore[typeddict-item]
                "write": partial(write_chunk, cycle)
            }


def write_chunk(cycle: RequestResponseCycle, body: bytes) -> bool:
    if (
        not cycle.response_started
        or cycle.response_complete
        or not cycle.chunked_encoding
        or cycle.disconnected
        or cycle.flow.write_paused
        or cycle.transport.is_closing()
    ):
        return False
    cycle.transport.write(b"%x\r\n%b\r\n" % (len(body), body))
    return True


__all__ = ["EXTENSION", "FramesHttpToolsProtocol", "write_chunk"]
