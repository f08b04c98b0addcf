"""The poll core: the one answer to a short or long poll, whichever way the request came in.

Request in (channel, the raw `after`, `limit` and `wait` parameters, the caller's principal and
address), answer out (status, headers, body). The ASGI route (app/web/api/channels.py) and the server's
quick lane (app/web/polllane.py, under `python -m app`) both call `PollCore.answer`, so checks,
error bodies, budgets, connection caps, presence leases and metrics are the same on both. The security headers every
response carries are added by the caller from `middleware.SECURITY_HEADERS`.

An answer is given at once when it can be (a `PollAnswer`), or later, through `done`, when the
poll waits for an event or the backend must be awaited (a `Waiting` handle is returned, whose
`cancel` forgets the poll when its client leaves; how it waits is app/web/pollwait.py).
"""

from __future__ import annotations

import asyncio
from time import time

from ..bus import PollResult
from ..bus.events import EventError, now_ms, parse_poll_cursor, validate_channel
from ..errors import BadParameter, FourcastError
from ..features.presence_polls import Holder, let_go
from ..identity.budgets import actor_key
from ..identity.policy import check_read
from ..identity.principal import ANONYMOUS, Principal
from ..services import Services
from .pollanswer import (
    Done,
    PollAnswer,
    Waiting,
    error_answer,
    internal_error,
    poll_body,
)
from .pollask import Ask, int_param
from .pollwait import SignOuts, answer_lapsed, await_backend, park, revoked_now

WAIT_LIMIT = 60
"""The protocol's longest `wait` (above it: 400), whatever this server holds a poll for."""

__all__ = ["Done", "PollAnswer", "PollCore", "Waiting", "error_answer", "internal_error"]


class PollCore:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.polls = services.bus.polls
        self.metrics = services.metrics
        self.connections = services.connections
        self.read_all = services.budgets.read_all
        self.tokens = services.tokens
        revocations = services.tokens.revocations
        self.revoked = revocations.not_before
        self.sign_outs = SignOuts(self)
        self._unlisten = revocations.on_revoke(self.sign_outs)
        settings = services.settings
        self.default_limit = settings.poll_default_limit
        self.max_limit = settings.poll_max_limit
        self.max_wait = int(settings.long_poll_max_wait)
        self.wait_limit = max(WAIT_LIMIT, self.max_wait)

    def answer(
        self,
        channel: str,
        after: str | None,
        limit: str | None,
        wait: str | None,
        principal: Principal,
        ip: str,
        done: Done,
        connection: Holder | None = None,
    ) -> PollAnswer | Waiting:
        """The answer now, or `Waiting` and the answer later through `done` (exactly once,
        unless cancelled). `connection`: the keep-alive connection the poll came on, where
        the server can tell when it closes (its polls then hold the person's presence)."""
        try:
            count, seconds, cursor, marker = self.check(channel, after, limit, wait, principal)
        except FourcastError as exc:
            if connection is not None:
                let_go(connection)  # a poll that holds nobody
            return error_answer(exc)
        services = self.services
        if seconds and services.draining:
            seconds = 0
        transport = "longpoll" if seconds else "shortpoll"
        # A read without a cursor is a look at history (e.g. a streaming client finding the
        # head), not a poller following the log: only the latter is present.
        user = principal.id if principal.kind == "user" else None
        person = principal if user is not None and cursor is not None else None
        ask = Ask(
            channel,
            cursor,
            now_ms() if marker is None else marker,
            count,
            seconds,
            transport,
            person if connection is None else None,  # else the connection holds the lease
            actor_key(principal, ip),
            user,
            ip,
            principal,
            connection,
        )
        arriving = None
        if connection is not None:  # every poll on it keeps the hold, moves it or lets it go
            arriving = services.presence.keep(connection, channel, person, transport, ip=ip)
        elif person is not None:
            ask.member, arriving = services.presence.touch_now(
                channel, person, transport, seconds, ip=ip
            )
        if arriving is not None:
            return self._after(arriving, ask, done)
        return self._proceed(ask, done)

    def check(
        self, channel: str, after: str | None, limit: str | None, wait: str | None, who: Principal
    ) -> tuple[int, int, int | None, float | None]:
        """The poll's limit, wait, cursor and marker, checked: raises what `answer` refuses with
        at once (400, 403), before anything is spent (a ticket's route asks first)."""
        try:
            validate_channel(channel)
            check_read(who, channel)
            count = int_param("limit", limit, self.default_limit, 1, self.max_limit)
            # A client cannot know this server's own bound: a longer wait is held that long.
            seconds = min(int_param("wait", wait, 0, 0, self.wait_limit), self.max_wait)
            cursor, marker = parse_poll_cursor(after) if after else (None, None)
        except EventError as exc:
            raise BadParameter(exc.message, code=exc.code) from None
        return count, seconds, cursor, marker

    def close(self) -> None:
        """Stops answering polls at their person's sign-out (the app's shutdown)."""
        self._unlisten()
        self.sign_outs.close()

    def _after(self, arriving: asyncio.Future[None], ask: Ask, done: Done) -> Waiting:
        """A person's arrival is being announced: the poll goes on once it is, so their first
        poll answers with their own `presence.join`, as when the announcement is awaited."""
        going: list[Waiting | None] = [None]
        cancelled = [False]

        def go(_: asyncio.Future[None]) -> None:
            if cancelled[0]:
                return
            caller = ask.caller
            if ask.wait and caller.is_user and revoked_now(self, caller):
                done(answer_lapsed(self, ask))  # signed out meanwhile: not parked to be missed
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
                self.client_left(ask)

        return Waiting(cancel)

    def _proceed(self, ask: Ask, done: Done) -> PollAnswer | Waiting:
        polls = self.polls
        channel, cursor, count, seconds = ask.channel, ask.cursor, ask.limit, ask.wait
        waits = seconds > 0 and cursor is not None and not self._draining()
        if waits and polls.up_to_date(channel, cursor or 0, ask.marker):
            return park(self, ask, done)
        result = polls.answer_now(channel, cursor, ask.marker, count)
        if result is None:
            return await_backend(self, ask, done)
        if not waits or result.events or result.reset or self._draining():
            return self.answer_result(ask, result)
        return park(self, ask, done)

    def _draining(self) -> bool:
        return self.services.bus.draining

    def answer_waited(self, ask: Ask, result: PollResult) -> PollAnswer:
        """A long poll's answer after its wait, given as the next request would be when its
        caller's credential expired or was signed out while it waited: 401, or for a session
        cookie (which then reads as no one) the answer anyone gets, on a public channel. A
        signed-out session is sent nothing more, as its streams and sockets are closed at once."""
        caller = ask.caller
        expires = caller.expires_at
        if (expires is not None and expires <= time()) or (self.revoked and caller.kind == "user"):
            try:
                self.tokens.check_standing(caller)
            except FourcastError as exc:
                return self._lapsed(ask, result, exc)
        return self.answer_result(ask, result)

    def _lapsed(self, ask: Ask, result: PollResult, lapse: FourcastError) -> PollAnswer:
        # The person no longer polls: their lease runs from now, as at the end of any poll.
        if ask.connection is not None:
            let_go(ask.connection)
        else:
            self.client_left(ask)
        ask.person = None
        if ask.caller.via_cookie:
            try:
                check_read(ANONYMOUS, ask.channel)
            except FourcastError as exc:
                return error_answer(exc)
            return self.answer_result(ask, result)
        return error_answer(lapse)

    def answer_result(self, ask: Ask, result: PollResult) -> PollAnswer:
        """The answer to a poll's result: 200, or 429 when a read from the start is over budget."""
        if ask.person is not None and ask.transport == "longpoll":
            # The lease runs from the end of the poll, not from the end of its longest wait.
            self.services.presence.renew(
                ask.member, ask.channel, ask.person, ask.transport, ip=ask.ip
            )
        if ask.reader is not None and (not ask.cursor or result.reset):
            # A read from the start of a channel (no cursor, 0, or one too old: a reset) that
            # finds history spends the reader's budget, in pages of `poll_default_limit`
            # events: re-reading whole histories in a loop gets 429 instead of its answer.
            # Ephemeral events (presence, typing) are live, not history: a person following
            # a room with no events kept yet reads them at cursor 0, as often as they come.
            kept = sum(1 for event in result.events if event.seq is not None)
            if kept:
                try:
                    self.read_all.take_now(ask.reader, max(1.0, kept / self.default_limit))
                except FourcastError as exc:
                    return error_answer(exc)
        metrics = self.metrics
        metrics.answered_poll(ask.transport)
        if result.events:
            metrics.wrote(ask.transport, len(result.events), result.events[-1].ts)
        return PollAnswer(200, poll_body(result))

    def client_left(self, ask: Ask) -> None:
        if ask.person is not None:
            # Gone before the answer: the lease runs from now, not from the end of the wait.
            self.services.presence.renew(
                ask.member, ask.channel, ask.person, ask.transport, ip=ask.ip
            )
