"""The group commit: publishes accepted in the last millisecond or so are kept in one backend
call, then acknowledged (their futures resolved) together.

One committer task appends one batch at a time, which is what lets a backend order a channel's
events without locks (app/bus/memory.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from .backend import Backend, BusUnavailable, Draft, OutcomeUnknown, PartlyAppended, Superseded
from .events import Event

log = logging.getLogger(__name__)


class BusOverloaded(BusUnavailable):
    """Too many publishes are waiting to be kept; the caller should retry later."""


class BusDraining(BusUnavailable):
    """The server is shutting down and accepts no more publishes."""


@dataclass(slots=True)
class _Pending:
    draft: Draft
    future: asyncio.Future[Event]


class GroupCommit:
    def __init__(
        self,
        backend: Backend,
        linger: float,
        max_batch: int,
        max_pending: int,
        max_pending_bytes: int = 64 << 20,
    ) -> None:
        self._backend = backend
        self._linger = linger
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._max_pending_bytes = max_pending_bytes
        self._pending: list[_Pending] = []
        self.pending_bytes = 0
        """The data of the publishes waiting for a commit (a metric, and bounded)."""
        self._has_pending = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self.draining = False
        self.on_commit: Callable[[int], object] | None = None
        """Told the size of each group commit (metrics)."""

    @property
    def pending(self) -> int:
        """Publishes waiting for a commit (a metric)."""
        return len(self._pending)

    def start(self) -> None:
        self._committer = asyncio.create_task(self._commit_loop(), name="bus-committer")

    async def drain(self) -> None:
        """Refuse new publishes and keep every one already accepted."""
        self.draining = True
        self._has_pending.set()
        if self._committer is not None:
            # asyncio.wait, not a suppressed await: it neither raises the committer's end nor
            # swallows a cancellation of this drain itself.
            await asyncio.wait({self._committer})
            self._committer = None

    async def keep(self, draft: Draft) -> Event:
        """The event once the backend has kept it (in the next group commit)."""
        if self.draining:
            raise BusDraining("server is shutting down")
        size = len(draft.data)
        if (
            len(self._pending) >= self._max_pending
            or self.pending_bytes + size > self._max_pending_bytes
        ):
            raise BusOverloaded("too many publishes waiting to be kept")
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(draft, future))
        self.pending_bytes += size
        self._has_pending.set()
        return await future

    async def _commit_loop(self) -> None:
        while True:
            await self._has_pending.wait()
            if not self._pending and self.draining:
                return
            if self._linger and len(self._pending) < self._max_batch and not self.draining:
                await asyncio.sleep(self._linger)
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            self.pending_bytes -= sum(len(p.draft.data) for p in batch)
            if not self._pending and not self.draining:
                # While draining, stay set: the loop must come round once more to return.
                self._has_pending.clear()
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        events: list[Event | None]
        try:
            events = list(await self._backend.append([p.draft for p in batch]))
        except PartlyAppended as partly:
            events = partly.events
        except asyncio.CancelledError:
            for p in batch:
                p.future.cancel()
            raise
        except Exception as exc:
            log.warning("commit of %d events failed: %s", len(batch), exc)
            error = exc if isinstance(exc, BusUnavailable) else BusUnavailable(str(exc))
            for i, p in enumerate(batch):
                if not p.future.done():
                    # An unknown outcome is told per event: each publisher learns which draft.
                    one = error.one(i) if isinstance(error, OutcomeUnknown) else error
                    p.future.set_exception(one)
            return
        if self.on_commit is not None:
            self.on_commit(sum(event is not None for event in events))
        for p, event in zip(batch, events, strict=True):
            if p.future.done():
                continue
            if event is None:
                p.future.set_exception(Superseded("another publish holds this Idempotency-Key"))
            else:
                p.future.set_result(event)
