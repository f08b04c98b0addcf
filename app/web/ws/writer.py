"""The writing half of a `/ws` connection.

Writes go straight to the socket while the peer keeps up (the `fourcast.frames` extension, no task
switch); a writer task runs only while the peer is behind, and it is what applies flow control, the
send timeout and the slow-reader close (4008, at the sink's overflow even while a batch waits).
Under a server without the extension the same task sends plain ASGI text messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

from starlette.types import Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ...bus import Sink, SinkOverflow
from ...bus.events import format_cursor
from ...bus.sink import Item
from ...server import FRAMES_EXTENSION, FRAMES_MESSAGE
from ..wire import text_frame, ws_frame, ws_message
from .codes import CLOSE_NORMAL, CLOSE_RESTART, CLOSE_SLOW

if TYPE_CHECKING:
    from ...services import Services
    from ...settings import Settings


class Writer:
    """Mixed into `Connection`, which holds the state named below in its slots."""

    if not TYPE_CHECKING:  # mypy would check assignments against this empty tuple
        __slots__ = ()

    ws: WebSocket
    raw_send: Send
    services: Services
    settings: Settings
    sink: Sink
    writer: asyncio.Task[None] | None
    sending: asyncio.Timeout | None
    closing: tuple[int, str] | None
    finishing: bool
    disconnected: bool
    _direct_write: Callable[[bytes], bool]

    def _start_writer(self) -> None:
        self.writer = asyncio.create_task(self._write_loop())

    async def _write_loop(self) -> None:
        timeout = self.settings.ws_send_timeout
        metrics = self.services.metrics
        extension = self.ws.scope.get("extensions", {}).get(FRAMES_EXTENSION)
        write = self._write_frames if extension is not None else self._write_messages
        try:
            while True:
                if self.sink.writer_leaving():
                    self.writer = None
                    return
                items = await self.sink.take()
                if items:
                    # One deadline per batch (no task per frame): a batch the peer will not
                    # accept within the send timeout is cancelled before its next write starts.
                    try:
                        async with asyncio.timeout(timeout) as self.sending:
                            events, newest = await write(items)
                    finally:
                        self.sending = None
                    if events:
                        metrics.wrote("websocket", events, newest)
                elif self.sink.closed:
                    if self.finishing:
                        return
                    # Closed by the hub: the server is shutting down.
                    self.closing = self.closing or (CLOSE_RESTART, "server restarting")
                    break
        except SinkOverflow:
            metrics.cut_off["websocket"].inc()
            self.closing = (CLOSE_SLOW, "too slow: resume from your last cursor")
        except TimeoutError:
            metrics.cut_off["websocket"].inc()
            # A send that cannot start is cancelled before any byte of its frame is written.
            self.closing = (CLOSE_SLOW, "too slow: resume from your last cursor")
        except (WebSocketDisconnect, OSError, RuntimeError):
            self.disconnected = True
            # Nothing will empty the sink now: closed, it stops a catch-up waiting for room in
            # it, so the reader gets back to `receive` and finds the client gone.
            self.sink.close()
            return
        self.sink.close()  # as above: the connection is closing, nothing is written any more
        # The close frame queues behind what the peer has not read yet; a peer that comes back
        # reads its events and then 4008, and one that reads nothing is dropped by the protocol
        # pings (app/server/stalled.py). Closing also ends the reader's `receive`.
        await self._close(self.settings.heartbeat + self.settings.heartbeat_grace)

    def _overflowed(self) -> None:
        """The sink overflowed (`Sink.on_overflow`): a batch being written waits for a peer
        that has stopped reading; it is ended now, as its send timeout would end it (4008),
        not up to `ws_send_timeout` later. Otherwise the writer's next take finds it."""
        sending = self.sending
        if sending is not None and not sending.expired():
            sending.reschedule(-1)

    async def _write_frames(self, items: Sequence[Item]) -> tuple[int, float | None]:
        """Pre-built frames, the whole batch in one write (see app/server/websocket.py)."""
        frames, events, newest = _frames(items)
        await self.raw_send({"type": FRAMES_MESSAGE, "frames": frames})
        return events, newest

    def _write_now(self, items: Sequence[Item]) -> bool:
        """The sink's synchronous path: the batch in one write, no task switch (single events
        to an idle sink are written by the hub's fan-out: `Sink.fan_out_through`)."""
        frames, events, newest = _frames(items)
        if not self._direct_write(frames):
            return False
        if events:
            self.services.metrics.wrote("websocket", events, newest)
        return True

    async def _write_messages(self, items: Sequence[Item]) -> tuple[int, float | None]:
        """Plain ASGI text messages, under any server."""
        send = self.ws.send
        events = 0
        newest: float | None = None
        for item in items:
            if isinstance(item, tuple):
                await send({"type": "websocket.send", "text": control_text(item)})
            else:
                await send(ws_message(item))
                events += 1
                newest = item.ts
        return events, newest

    async def _close(self, timeout: float = 2) -> None:
        code, reason = self.closing or (CLOSE_NORMAL, "")
        if self.ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(code, reason), timeout)


def _frames(items: Sequence[Item]) -> tuple[bytes, int, float | None]:
    if len(items) == 1 and not isinstance(item := items[0], tuple):
        return ws_frame(item), 1, item.ts  # the common case under fan-out: one event, no copy
    frames: list[bytes] = []
    events = 0
    newest: float | None = None
    for item in items:
        if isinstance(item, tuple):
            frames.append(text_frame(control_text(item).encode()))
        else:
            frames.append(ws_frame(item))
            events += 1
            newest = item.ts
    return b"".join(frames), events, newest


def control_text(item: tuple[Literal["reset"], str, int] | tuple[Literal["text"], str]) -> str:
    """A control item of the sink as its JSON text: a reset (with the cursor the reader now
    stands after, `next`), or a reply already encoded."""
    if item[0] == "text":
        return item[1]
    return f'{{"op":"reset","channel":"{item[1]}","next":"{format_cursor(item[2])}"}}'
