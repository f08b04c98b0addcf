"""How a poll that cannot be answered at once waits for its answer (app/web/poll.py decides).

Parked with the bus when its channel is answered from memory: one `Parked` object, no task, what
every waiting long poll near the head costs. Otherwise one task awaits the backend. Either way a
long poll counts against the connection caps while it waits, and its client leaving forgets it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..bus import BusUnavailable, PollResult
from ..bus.events import format_poll_cursor
from ..bus.parking import SWEEP_INTERVAL, ParkedPoll
from ..errors import FourcastError
from ..identity.principal import Principal
from .pollanswer import Done, PollAnswer, Waiting, error_answer, internal_error, unavailable
from .pollask import Ask

if TYPE_CHECKING:
    from .poll import PollCore


def park(core: PollCore, ask: Ask, done: Done) -> PollAnswer | Waiting:
    """Answered from memory (SyncReads, or a channel held for its pollers): the poll waits
    parked, with no task of its own."""
    try:
        core.connections.acquire(ask.user, ask.ip)  # as `_hold`, released by `Parked`
    except FourcastError as exc:
        return error_answer(exc)
    held = Parked(core, ask, done)
    held.parked = core.polls.park(
        ask.channel, ask.cursor or 0, ask.marker, ask.limit, ask.wait, held
    )
    return held


def await_backend(core: PollCore, ask: Ask, done: Done) -> PollAnswer | Waiting:
    """The backend must be awaited (a channel not in memory, or not held yet): one task."""
    release: Callable[[], None] = _nothing
    if ask.wait and ask.cursor is not None:
        try:
            release = _hold(core, ask)
        except FourcastError as exc:
            return error_answer(exc)
    task = asyncio.ensure_future(
        core.polls.poll(ask.channel, ask.cursor, ask.marker, ask.limit, ask.wait)
    )
    caller = ask.caller
    unwatch: Callable[[], None] = _nothing
    if release is not _nothing and caller.is_user:
        # Not parked where a sign-out finds it (`SignOuts`): watched, as a stream
        # is (this way already costs a task).
        def signed_out() -> None:
            if task.done() or not revoked_now(core, caller):
                return  # answered already (`finished` refuses it), or a newer credential
            unwatch()
            task.cancel()
            release()
            done(answer_lapsed(core, ask))

        unwatch = core.tokens.revocations.watch(caller.id, signed_out)

    def finished(task: asyncio.Future[PollResult]) -> None:
        release()
        unwatch()
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            done(core.answer_waited(ask, task.result()))
        elif isinstance(exc, BusUnavailable):
            done(unavailable(exc))
        else:
            done(internal_error(f"poll of {ask.channel}", exc))

    task.add_done_callback(finished)

    def cancel() -> None:
        release()
        unwatch()
        task.cancel()
        core.client_left(ask)

    return Waiting(cancel)


def _hold(core: PollCore, ask: Ask) -> Callable[[], None]:
    """Count a held long poll against the connection caps like any open connection (raises
    RateLimited or Unavailable at a cap); returns its release, which runs once."""
    connections = core.connections
    connections.acquire(ask.user, ask.ip)
    held = [True]

    def release() -> None:
        if held[0]:
            held[0] = False
            connections.release(ask.user, ask.ip)

    return release


class Parked(Waiting):
    """A parked long poll: the bus's `done` for it (called with the result), its `cancel`, and
    its hold on the connection caps, in one object: what `await_backend` makes closures for,
    made for every long poll that waits."""

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
            self.done(self.core.answer_waited(self.ask, result))

    def cancel(self) -> None:
        self._release()
        core = self.core
        parked, self.parked = self.parked, None
        if parked is not None:
            core.polls.cancel(parked)
        core.client_left(self.ask)

    def _release(self) -> None:
        if self.held:
            self.held = False
            self.core.connections.release(self.ask.user, self.ask.ip)


class SignOuts:
    """Answers the parked long polls of people who signed out (here, or on another node over
    Redis) as their wait's end would, not when it comes. They are found by walking the parked
    polls, so no poll pays to be findable; at most one walk a SWEEP_INTERVAL, the sign-outs
    meanwhile gathered into it, so a burst of sign-outs costs one walk, not one each."""

    def __init__(self, core: PollCore) -> None:
        self.core = core
        self.users: set[str] = set()
        self.walked = -SWEEP_INTERVAL
        self.timer: asyncio.TimerHandle | None = None

    def __call__(self, user: str) -> None:
        self.users.add(user)
        if self.timer is not None:
            return  # a walk is due: it takes this person too
        loop = asyncio.get_running_loop()
        due = self.walked + SWEEP_INTERVAL - loop.time()
        if due <= 0:
            self.walk()
        else:
            self.timer = loop.call_later(due, self.walk)

    def walk(self) -> None:
        self.timer = None
        self.walked = asyncio.get_running_loop().time()
        users, self.users = self.users, set()
        core = self.core

        def theirs(poll: ParkedPoll) -> bool:
            held = poll.done
            return (
                isinstance(held, Parked)
                and held.ask.user in users
                and revoked_now(core, held.ask.caller)
            )

        core.polls.end(theirs)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def revoked_now(core: PollCore, caller: Principal) -> bool:
    return core.tokens.revocations.is_revoked(caller.id, caller.issued_at)


def answer_lapsed(core: PollCore, ask: Ask) -> PollAnswer:
    """A waiting poll ended by its caller's sign-out, with nothing to give yet: what its wait's
    end would answer (an empty page from the same cursor, for a session cookie on a channel
    anyone may read)."""
    empty = PollResult([], format_poll_cursor(ask.cursor or 0, ask.marker), False)
    return core.answer_waited(ask, empty)


def _nothing() -> None:
    return None
