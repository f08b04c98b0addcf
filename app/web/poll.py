"""The poll core: the one answer to a short or long poll, whichever way the request came in.

Request in (channel, the raw `after`, `limit` and `wait` parameters, the caller's principal and
address), answer out (status, headers, body). The ASGI route (app/web/api/channels.py) and the server's
quick lane (app/web/polllane.py, under `python -m app`) both call `PollCore.answer`, so checks,
error bodies, budgets, connection caps, presence leases and metrics are the same on both. The security headers every
response carries are added by the caller from `middleware.SECURITY_HEADERS`.

An answer is given at once when it can be (a `PollAnswer`), or later, through `done`, when the
poll waits for an event or the backend must be awaited (a `Waiting` handle is returned, whose
`cancel` forgets the poll when its client leaves).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..bus import BusUnavailable, PollResult
from ..bus.events import EventError, now_ms, parse_poll_cursor, validate_channel
from ..bus.parking import ParkedPoll
from ..errors import BadParameter, FourcastError
from ..identity.budgets import actor_key
from ..identity.policy import check_read
from ..identity.principal import Principal
from ..services import Services
from .pollanswer import (
    Done,
    PollAnswer,
    Waiting,
    error_answer,
    internal_error,
    poll_body,
    unavailable,
)
from .pollask import Ask, int_param

__all__ = ["Done", "PollAnswer", "PollCore", "Waiting", "error_answer", "internal_error"]


class PollCore:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.polls = services.bus.polls
        self.metrics = services.metrics
        self.connections = services.connections
        self.read_all = services.budgets.read_all
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
        ip: str,
        done: Done,
    ) -> PollAnswer | Waiting:
        """The answer now, or `Waiting` and the answer later through `done` (exactly once,
        unless cancelled)."""
        try:
            validate_channel(channel)
            check_read(principal, channel)
            count = int_param("limit", limit, self.default_limit, 1, self.max_limit)
            seconds = int_param("wait", wait, 0, 0, self.max_wait)
            cursor, marker = parse_poll_cursor(after) if after else (None, None)
        except EventError as exc:
            return error_answer(BadParameter(exc.message, code=exc.code))
        except FourcastError as exc:
            return error_answer(exc)
        services = self.services
        if seconds and services.draining:
            seconds = 0
        transport = "longpoll" if seconds else "shortpoll"
        # A read without a cursor is a look at history (e.g. a streaming client finding the
        # head), not a poller following the log: only the latter holds a presence lease.
        person = principal if principal.is_user and cursor is not None else None
        ask = Ask(
            channel,
            cursor,
            now_ms() if marker is None else marker,
            count,
            seconds,
            transport,
            person,
            actor_key(principal, ip),
            principal.id if principal.is_user else None,
            ip,
        )
        if person is not None:
            arriving = services.presence.touch_now(channel, person, transport, seconds)
            if arriving is not None:
                return self._after(arriving, ask, done)
        return self._proceed(ask, done)

    def _after(self, arriving: asyncio.Future[None], ask: Ask, done: Done) -> Waiting:
        """A person's arrival is being announced: the poll goes on once it is, so their first
        poll answers with their own `presence.join`, as when the announcement is awaited."""
        going: list[Waiting | None] = [None]
        cancelled = [False]

        def go(_: asyncio.Future[None]) -> None:
            if cancelled[0]:
                return
            answer = self._proceed(ask, done)
            if isinstance(answer, Waiting):
                going[0] = answer
            else:
                done(answer)

        arriving.add_done_callback(go)

        def cancel() -> None:
            cancelled[0] = True
            if going[0] is not None:
                going[0].cancel()
            else:
                self._left(ask)

        return Waiting(cancel)

    def _proceed(self, ask: Ask, done: Done) -> PollAnswer | Waiting:
        polls = self.polls
        channel, cursor, count, seconds = ask.channel, ask.cursor, ask.limit, ask.wait
        waits = seconds > 0 and cursor is not None and not self._draining()
        if waits and polls.up_to_date(channel, cursor or 0, ask.marker):
            return self._park(ask, done)
        result = polls.answer_now(channel, cursor, ask.marker, count)
        if result is None:
            return self._await(ask, done)
        if not waits or result.events or result.reset or self._draining():
            return self._ok(ask, result)
        return self._park(ask, done)

    def _draining(self) -> bool:
        return self.services.bus.draining

    def _ok(self, ask: Ask, result: PollResult) -> PollAnswer:
        if ask.person is not None and ask.transport == "longpoll":
            # The lease runs from the end of the poll, not from the end of its longest wait.
            self.services.presence.touch_now(ask.channel, ask.person, ask.transport, 0)
        if ask.reader is not None and result.events and (not ask.cursor or result.reset):
            # A read from the start of a channel (no cursor, 0, or one too old: a reset) that
            # finds events spends the reader's budget, in pages of `poll_default_limit`
            # events: re-reading whole histories in a loop gets 429 instead of its answer.
            try:
                self.read_all.take_now(
                    ask.reader, max(1.0, len(result.events) / self.default_limit)
                )
            except FourcastError as exc:
                return error_answer(exc)
        metrics = self.metrics
        metrics.answered_poll(ask.transport)
        if result.events:
            metrics.wrote(ask.transport, len(result.events), result.events[-1].ts)
        return PollAnswer(200, poll_body(result))

    def _hold(self, ask: Ask) -> Callable[[], None]:
        """Count a held long poll against the connection caps like any open connection (raises
        RateLimited or Unavailable at a cap); returns its release, which runs once."""
        connections = self.connections
        connections.acquire(ask.user, ask.ip)
        held = [True]

        def release() -> None:
            if held[0]:
                held[0] = False
                connections.release(ask.user, ask.ip)

        return release

    def _park(self, ask: Ask, done: Done) -> PollAnswer | Waiting:
        """Answered from memory (SyncReads, or a channel held for its pollers): the poll waits
        parked, with no task of its own."""
        try:
            self.connections.acquire(ask.user, ask.ip)  # as `_hold`, released by `Parked`
        except FourcastError as exc:
            return error_answer(exc)
        held = Parked(self, ask, done)
        held.parked = self.polls.park(
            ask.channel, ask.cursor or 0, ask.marker, ask.limit, ask.wait, held
        )
        return held

    def _await(self, ask: Ask, done: Done) -> PollAnswer | Waiting:
        """The backend must be awaited (a channel not in memory, or not held yet): one task."""
        release: Callable[[], None] = _nothing
        if ask.wait and ask.cursor is not None:
            try:
                release = self._hold(ask)
            except FourcastError as exc:
                return error_answer(exc)
        task = asyncio.ensure_future(
            self.polls.poll(ask.channel, ask.cursor, ask.marker, ask.limit, ask.wait)
        )

        def finished(task: asyncio.Future[PollResult]) -> None:
            release()
            if task.cancelled():
                return
            exc = task.exception()
            if exc is None:
                done(self._ok(ask, task.result()))
            elif isinstance(exc, BusUnavailable):
                done(unavailable(exc))
            else:
                done(internal_error(f"poll of {ask.channel}", exc))

        task.add_done_callback(finished)

        def cancel() -> None:
            release()
            task.cancel()
            self._left(ask)

        return Waiting(cancel)

    def _left(self, ask: Ask) -> None:
        if ask.person is not None:
            # Gone before the answer: the lease runs from now, not from the end of the wait.
            self.services.presence.touch_now(ask.channel, ask.person, ask.transport, 0)


class Parked(Waiting):
    """A parked long poll: the bus's `done` for it (called with the result), its `cancel`, and
    its hold on the connection caps, in one object: what `_await` makes closures for, made for
    every long poll that waits."""

    __slots__ = ("ask", "core", "done", "held", "parked")

    def __init__(self, core: PollCore, ask: Ask, done: Done) -> None:
        self.core = core
        self.ask = ask
        self.done = done
        self.held = True
        self.parked: ParkedPoll | None = None

    def __call__(self, result: PollResult | None) -> None:
        self.parked = None  # it names this object: no cycle left for the collector to find
        self._release()
        if result is None:
            self.done(unavailable(BusUnavailable("read failed")))
        else:
            self.done(self.core._ok(self.ask, result))

    def cancel(self) -> None:
        self._release()
        core = self.core
        parked, self.parked = self.parked, None
        if parked is not None:
            core.polls.cancel(parked)
        core._left(self.ask)

    def _release(self) -> None:
        if self.held:
            self.held = False
            self.core.connections.release(self.ask.user, self.ask.ip)


def _nothing() -> None:
    return None
