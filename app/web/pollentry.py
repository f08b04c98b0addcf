"""Polls at the app's own ASGI entry (app/web/fastlane.py), ahead of the router: what the
quick lane (app/web/polllane.py) does inside fourcast's HTTP protocol, for a poll that reached
the app as an ASGI request (plain `uvicorn app.main:app`, another ASGI server, or a request the
quick lane left to ASGI). The same `PollLane.ask` (the caller told apart without awaiting, then
the poll core) gives the answer, so the bytes are the route's; a poll whose caller cannot be
told without awaiting (a ticket, an application token whose key is not fetched yet) is left to
the FastAPI route, which answers through the same core. The route stays the one that
/openapi.json describes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

from ..server.quick_adopt import disconnect_hook
from .deps import NeedsAwait
from .middleware import SECURITY_HEADERS
from .poll import PollAnswer, Waiting
from .sse import disconnected

if TYPE_CHECKING:  # the lane imports the channels router, whose poll route imports this
    from .polllane import PollLane

Headers = list[tuple[bytes, bytes]]

_headers: dict[tuple[tuple[bytes, bytes], ...], tuple[tuple[bytes, bytes], ...]] = {}
NO_CONTENT: Headers = list(SECURITY_HEADERS)
HEADERS_KEPT = 16


async def serve_poll(scope: Scope, receive: Receive, send: Send, channel: str) -> bool:
    """True once this GET of `/api/channels/{channel}/events` is answered; False (nothing
    sent) when the route must answer it."""
    lane: PollLane | None = getattr(scope["app"].state, "quick_lane", None)
    if lane is None:
        return False  # not started, or stopping: the route answers as it always could
    later = Later()
    try:
        principal, answer = lane.ask(
            channel, scope["query_string"], scope["headers"], scope.get("client"), later
        )
    except NeedsAwait:
        return False
    if isinstance(answer, Waiting):
        watch = principal is not None and principal.is_user
        hook = None if watch else disconnect_hook(receive)
        answered = await later.wait(answer, receive if watch else None, hook)
        if answered is None:
            await send({"type": "http.response.start", "status": 204, "headers": NO_CONTENT})
            await send({"type": "http.response.body", "body": b""})
            return True
        answer = answered
    await send({"type": "http.response.start", "status": answer.status, "headers": _head(answer)})
    await send({"type": "http.response.body", "body": answer.body})
    return True


def _head(answer: PollAnswer) -> Headers:
    """The answer's headers, its length and the security headers (what the route's response
    and SecurityHeadersMiddleware send)."""
    fixed = _headers.get(answer.headers)
    if fixed is None:
        fixed = (*answer.headers, *SECURITY_HEADERS)
        if answer.status == 200 and len(_headers) < HEADERS_KEPT:
            # Kept for answers with events (the hot path); an error's headers vary (a
            # Retry-After, a request id), and a client must not grow this.
            _headers[answer.headers] = fixed
    return [(b"content-length", b"%d" % len(answer.body)), *fixed]


class Later:
    """A poll's `done`: where a `Waiting` poll's answer arrives. The future it is awaited on is
    made only for a poll that waits (most short polls are answered at once)."""

    __slots__ = ("answer", "future")

    def __init__(self) -> None:
        self.answer: PollAnswer | None = None
        self.future: asyncio.Future[PollAnswer | None] | None = None

    def __call__(self, answer: PollAnswer) -> None:
        if self.answer is None:
            self.answer = answer
            if self.future is not None and not self.future.done():
                self.future.set_result(answer)

    async def wait(
        self,
        waiting: Waiting,
        receive: Receive | None,
        hook: Callable[[Callable[[], None]], None] | None = None,
    ) -> PollAnswer | None:
        """The answer, or None when the client (watched through `receive`) left first. A
        person's poll is watched so it is forgotten when they leave (their presence lease ends
        with it); watching costs a task, so services and anonymous readers (`receive` None)
        are told by the server's `hook` where it has one (fourcast's protocol, adopted or
        not), and otherwise wait it out, holding their place in the caps."""
        if self.answer is not None:
            return self.answer
        later: asyncio.Future[PollAnswer | None] = asyncio.get_running_loop().create_future()
        self.future = later
        if receive is None:
            if hook is not None:
                hook(partial(self._gone, waiting))
            try:
                return await later
            except asyncio.CancelledError:
                waiting.cancel()
                raise
        gone = asyncio.ensure_future(disconnected(receive))  # no poll held for nobody
        try:
            await asyncio.wait((later, gone), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            waiting.cancel()
            raise
        finally:
            gone.cancel()
        if not later.done():
            waiting.cancel()
            return None  # nobody is left to read it
        return later.result()

    def _gone(self, waiting: Waiting) -> None:
        """The client left before the answer: the poll lets go of its place now."""
        if self.answer is None and self.future is not None and not self.future.done():
            waiting.cancel()
            self.future.set_result(None)
