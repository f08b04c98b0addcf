"""The poll core: the one answer to a short or long poll, whichever way the request came in.

Request in (channel, the raw `after`, `limit` and `wait` parameters, the caller's principal),
answer out (status, headers, body). The ASGI route (app/web/api/channels.py) and the server's
quick lane (app/web/polllane.py, under `python -m app`) both call `PollCore.answer`, so checks,
error bodies, presence leases and metrics are the same on both. The security headers every
response carries are added by the caller from `middleware.SECURITY_HEADERS`.

An answer is given at once when it can be (a `PollAnswer`), or later, through `done`, when the
poll waits for an event or the backend must be awaited (a `Waiting` handle is returned, whose
`cancel` forgets the poll when its client leaves).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import Response

from ..bus import BusUnavailable, PollResult
from ..bus.events import EventError, now_ms, parse_poll_cursor, validate_channel
from ..errors import BadParameter, FourcastError
from ..identity.policy import check_read
from ..identity.principal import Principal
from ..services import Services
from .errors import bus_unavailable_response, error_response, response_for

log = logging.getLogger(__name__)

JSON = (b"content-type", b"application/json")


@dataclass(slots=True, frozen=True)
class PollAnswer:
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


INTERNAL_ERROR = from_response(error_response(500, "internal_error", "internal server error"))


def poll_body(result: PollResult) -> bytes:
    events = b",".join(e.json for e in result.events)
    reset = b"true" if result.reset else b"false"
    return b'{"events":[%b],"next":"%b","reset":%b}' % (events, result.next.encode(), reset)


class PollCore:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.polls = services.bus.polls
        self.metrics = services.metrics
        settings = services.settings
        self.default_limit = settings.poll_default_limit
        self.max_limit = settings.poll_max_limit
        self.max_wait = int(settings.long_poll_max_wait)

    def answer(
        self,
        channel: str,
        after: str | None,
        limit: str | None,
        wait: str | None,
        principal: Principal,
        done: Done,
    ) -> PollAnswer | Waiting:
        try:
            validate_channel(channel)
            check_read(principal, channel)
            count = _int_param("limit", limit, self.default_limit, 1, self.max_limit)
            seconds = _int_param("wait", wait, 0, 0, self.max_wait)
            cursor, marker = parse_poll_cursor(after) if after else (None, None)
        except EventError as exc:
            return error_answer(BadParameter(exc.message, code=exc.code))
        except FourcastError as exc:
            return error_answer(exc)
        polls = self.polls
        services = self.services
        if seconds and services.draining:
            seconds = 0
        if marker is None:
            marker = now_ms()
        transport = "longpoll" if seconds else "shortpoll"
        # A read without a cursor is a look at history (e.g. a streaming client finding the
        # head), not a poller following the log: only the latter holds a presence lease.
        person = principal if principal.is_user and cursor is not None else None
        if person is not None:
            services.presence.touch_now(channel, person, transport, seconds)
        waits = seconds > 0 and not self._draining()  # shutting down: answer at once
        if waits and cursor is not None and polls.up_to_date(channel, cursor, marker):
            return self._park(channel, cursor, marker, count, seconds, transport, person, done)
        result = polls.answer_now(channel, cursor, marker, count)
        if result is None:
            return self._await(channel, cursor, marker, count, seconds, transport, person, done)
        if not seconds or cursor is None or result.events or result.reset or self._draining():
            return self._ok(transport, result, channel, person)
        return self._park(channel, cursor, marker, count, seconds, transport, person, done)

    def _draining(self) -> bool:
        return self.services.bus.draining

    def _ok(
        self, transport: str, result: PollResult, channel: str, person: Principal | None
    ) -> PollAnswer:
        if person is not None and transport == "longpoll":
            # The lease runs from the end of the poll, not from the end of its longest wait.
            self.services.presence.touch_now(channel, person, transport, 0)
        metrics = self.metrics
        metrics.answered_poll(transport)
        if result.events:
            metrics.wrote(transport, len(result.events), result.events[-1].ts)
        return PollAnswer(200, poll_body(result))

    def _park(
        self,
        channel: str,
        after: int,
        marker: float,
        limit: int,
        wait: int,
        transport: str,
        person: Principal | None,
        done: Done,
    ) -> Waiting:
        """Memory-backed (SyncReads): the poll waits parked, with no task of its own."""

        def answered(result: PollResult | None) -> None:
            if result is None:
                done(from_response(bus_unavailable_response(BusUnavailable("read failed"))))
            else:
                done(self._ok(transport, result, channel, person))

        parked = self.polls.park(channel, after, marker, limit, wait, answered)

        def cancel() -> None:
            self.polls.cancel(parked)
            self._left(channel, transport, person)

        return Waiting(cancel)

    def _await(
        self,
        channel: str,
        after: int | None,
        marker: float,
        limit: int,
        wait: int,
        transport: str,
        person: Principal | None,
        done: Done,
    ) -> Waiting:
        """The backend must be awaited (Redis, or a channel not in memory yet): one task."""
        task = asyncio.ensure_future(self.polls.poll(channel, after, marker, limit, wait))

        def finished(task: asyncio.Future[PollResult]) -> None:
            if task.cancelled():
                return
            exc = task.exception()
            if exc is None:
                done(self._ok(transport, task.result(), channel, person))
            elif isinstance(exc, BusUnavailable):
                done(from_response(bus_unavailable_response(exc)))
            else:
                log.error("poll of %s failed", channel, exc_info=exc)
                done(INTERNAL_ERROR)

        task.add_done_callback(finished)

        def cancel() -> None:
            task.cancel()
            self._left(channel, transport, person)

        return Waiting(cancel)

    def _left(self, channel: str, transport: str, person: Principal | None) -> None:
        if person is not None:
            # Gone before the answer: the lease runs from now, not from the end of the wait.
            self.services.presence.touch_now(channel, person, transport, 0)


def _int_param(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise BadParameter(f"{name} must be between {low} and {high}")
    return value
