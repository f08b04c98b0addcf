"""What a poll answers, as bytes: the body of a page, and the error answers (built by
app/web/errors.py, so they are the bytes a Starlette response would send)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import Response

from ..bus import BusUnavailable, PollResult
from ..errors import FourcastError
from .errors import bus_unavailable_response, response_for, server_error_response

log = logging.getLogger(__name__)

JSON = (b"content-type", b"application/json")


@dataclass(slots=True)
class PollAnswer:
    """Not changed once made (not frozen: a frozen dataclass is slower to make, and one is made
    for every poll answered)."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = (JSON,)
    """Lower-case names; the content type included, the security headers not."""


Done = Callable[[PollAnswer], None]


class Waiting:
    """A poll whose answer will come through `done`; `cancel` if its client goes away."""

    __slots__ = ("_cancel",)

    def __init__(self, cancel: Callable[[], None]) -> None:
        self._cancel = cancel

    def cancel(self) -> None:
        self._cancel()


def from_response(response: Response) -> PollAnswer:
    """The same bytes a Starlette response would send (errors: built by app/web/errors.py)."""
    headers = tuple((k, v) for k, v in response.raw_headers if k != b"content-length")
    return PollAnswer(response.status_code, bytes(response.body), headers)


def error_answer(exc: FourcastError) -> PollAnswer:
    return from_response(response_for(exc))


def internal_error(what: str, exc: BaseException) -> PollAnswer:
    """A 500 naming a fresh request id; the details are logged under it."""
    response, request_id = server_error_response(500, "internal_error", "internal server error")
    log.error("%s failed [request %s]", what, request_id, exc_info=exc)
    return from_response(response)


def unavailable(exc: BusUnavailable) -> PollAnswer:
    return from_response(bus_unavailable_response(exc))


def poll_body(result: PollResult) -> bytes:
    events = b",".join(e.json for e in result.events)
    reset = b"true" if result.reset else b"false"
    tail = b',"truncated":true}' if result.truncated else b"}"
    return b'{"events":[%b],"next":"%b","reset":%b%b' % (events, result.next.encode(), reset, tail)
