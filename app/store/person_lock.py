"""One change of a person's notifications at a time in this process, from its write to its event.

A notification's row and a read mark are committed, then their event is published: two writes.
Two of a person's changes at once (a send and a "mark read") could commit in one order and publish
in the other, and the read's `unread` count, read in its transaction, then disagreed with the
events before it: a client adding up `notification` events and taking the count of each
`notification.read` ended with a wrong count. Held from the write to the event, this lock makes the
events' order the writes' order.

It is an `asyncio.Lock` per person, and holds no database connection: a lock held across the
publish on a pooled connection (a PostgreSQL advisory lock) would let a burst of changes for many
people take every connection while their events wait for the journal, which needs one too. So two
nodes on one PostgreSQL database can still tell a send and a mark made on different nodes at the
same moment in the other order (docs/protocol.md).
"""

from __future__ import annotations

import contextlib
from asyncio import Lock
from collections.abc import AsyncIterator


class PersonLock:
    def __init__(self) -> None:
        self._local: dict[str, tuple[Lock, int]] = {}
        """Each person's lock and how many hold it or wait: dropped at none, so it stays small."""

    @contextlib.asynccontextmanager
    async def hold(self, person: str) -> AsyncIterator[None]:
        """Hold `person`'s lock."""
        lock, users = self._local.get(person, (Lock(), 0))
        self._local[person] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._local[person]
            if users == 1:
                del self._local[person]
            else:
                self._local[person] = (lock, users - 1)
