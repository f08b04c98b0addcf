"""Our own Server-Sent Events response: one task per stream, the request's own.

The body is an async iterator of ready-made chunks (app/web/api/stream.py): it wakes on its sink
and on a keepalive timeout, so it sends its own keepalive comments, and it ends when the sink is
closed. The sink is closed by the client leaving (the server's `on_disconnect` callback where it
offers one, app/server/http.py; else one task waiting for `http.disconnect`), by shutdown
(`Bus.drain`), or by the reader falling too far behind. Each send has a timeout: a peer that
stops reading is cut off, and resumes by cursor when it reconnects; so is one whose queue overflows
while a send waits for it (`overflowed`), at once. A reader cut off has its connection aborted at
once (`_abort`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]
"""Every stream's headers: one list shared by all of them (the security headers are added by
the caller, app/web/api/stream.py). No `Connection`: it is the server's, which says `close`
when the connection ends with the stream (HTTP/1.0, a client's `Connection: close`)."""


class SlowReader(Exception):
    """An SSE reader fell further behind than its queue allows and is cut off."""


class SendTimeout(TimeoutError):
    """A chunk could not be sent within the send timeout: the peer stopped reading."""


SLOW_READER_ERRORS: tuple[type[BaseException], ...] = (SlowReader, SendTimeout)
"""How a cut-off SSE stream ends: routine, logged as such, not as a server error."""


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        send_timeout: float | None,
        headers: list[tuple[bytes, bytes]],
        on_gone: Callable[[], None] | None = None,
        on_cut_off: Callable[[], None] | None = None,
        on_unsent: Callable[[], None] | None = None,
    ) -> None:
        """`on_gone`: called when the client leaves, with a task waiting for the disconnect
        (None: the server reports it by callback, or the body ends by itself). `on_cut_off`:
        called when a send times out, or is ended by the queue's overflow (`overflowed`): the
        reader is cut off, as when the body finds its queue overflowed.
        `on_unsent`: called when sending the headers fails (the client gone, under a server that
        says so; the task cancelled): the body never runs, so its clean-up would not either."""
        self.status_code = 200
        self.background = None
        self.body = b""
        self.raw_headers = headers
        self.chunks = chunks
        self.send_timeout = send_timeout
        self.on_gone = on_gone
        self.on_cut_off = on_cut_off
        self.on_unsent = on_unsent
        self._sending: asyncio.Timeout | None = None
        self._overflowed = False

    def overflowed(self) -> None:
        """The stream's queue overflowed (`Sink.on_overflow`). A send under way waits for a
        reader that has stopped reading: it is ended now, as its timeout would end it, and the
        reader cut off at once, not up to `send_timeout` later. Otherwise the body's next take
        finds the overflow itself."""
        sending = self._sending
        if sending is not None and not sending.expired():
            self._overflowed = True
            sending.reschedule(-1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        except BaseException:
            if self.on_unsent is not None:
                self.on_unsent()
            raise
        if scope.get("method") == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        watcher = None
        cycle = None
        if self.on_gone is not None:
            watcher = asyncio.ensure_future(_gone(receive, self.on_gone))
            cycle = _stock_cycle(receive)
        chunks = self.chunks
        try:
            async for chunk in chunks:
                if cycle is not None and cycle.transport.is_closing():
                    # Marked as uvicorn's `connection_lost` marks the current request: it then
                    # writes nothing more, and takes the unfinished response for a client gone.
                    cycle.disconnected = True
                    cycle.message_event.set()
                    return
                message = {"type": "http.response.body", "body": chunk, "more_body": True}
                try:
                    async with asyncio.timeout(self.send_timeout) as self._sending:
                        await send(message)
                except TimeoutError:
                    if self.on_cut_off is not None:
                        self.on_cut_off()
                    raise SlowReader if self._overflowed else SendTimeout from None
                finally:
                    self._sending = None
        except SLOW_READER_ERRORS:
            _abort(receive)
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()  # runs the body's clean-up when a send failed or timed out
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _stock_cycle(receive: Receive) -> Any:
    """uvicorn's request cycle under a stream on its own protocol, where the disconnect may
    never be told: a request pipelined behind the stream takes its place as the connection's
    current one, and only that one is marked disconnected when the socket closes. Its
    transport, checked before each chunk (a keepalive at least every `sse_keepalive` seconds),
    ends such a stream instead of writes to a closed socket (held for ever under asyncio's
    loop, an error under uvloop's). None under another server."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if not callable(getattr(transport, "is_closing", None)):
        return None
    if not hasattr(cycle, "disconnected") or not hasattr(cycle, "message_event"):
        return None
    return cycle


def _abort(receive: Receive) -> None:
    """Drops the connection of a reader cut off, under uvicorn (either launch path): closed, it
    would stay open until the client read the bytes buffered for it, which it does not (until
    the server's `http_send_timeout`, at best), holding the socket and those bytes."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort):
        abort()


async def _gone(receive: Receive, on_gone: Callable[[], None]) -> None:
    await disconnected(receive)
    on_gone()


async def disconnected(receive: Receive) -> None:
    """Returns once the client has gone (what an ASGI app must read `receive` to learn)."""
    while (await receive())["type"] != "http.disconnect":
        pass
