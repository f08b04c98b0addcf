"""The bus's part of a room history page: its newest chat messages below the page's `before`.

The SQL archive may lag behind the bus (the Redis backend archives after acknowledging), so a
page merges in the messages the bus retains. Only the newest `want` of them below `before` can be
on the page (the archive's top `want` and the bus's together hold the whole true page), and none
below the archive's own `want`-th: so the bus is read back from `before` in windows, starting at
`want` entries and doubling, until that many messages are found, the archive's bound is passed,
or its retained history ends. A room whose log holds many other events (presence, an app's own)
is read further, and its reader pays for every entry read, before it is read (`ReadCharge`).
"""

from __future__ import annotations

from ..bus import Backend, Event
from ..identity.budgets import ReadCharge
from ..store.models import CHAT_MESSAGE

WINDOW_MAX = 501
"""Entries per read of the bus at most (one reply of up to 64 KiB each)."""


class BusMessages:
    """Reads a room's newest messages off the bus, counting the entries read (a metric)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.entries_read = 0

    async def below(
        self,
        channel: str,
        before: int | None,
        want: int,
        lowest: int | None,
        charge: ReadCharge | None,
    ) -> list[Event]:
        """Up to `want` chat messages below `before` (None: the newest), newest first; reading
        stops at a cursor below `lowest` (None: no bound)."""
        left = await self._backend.retained_below(channel, before)
        found: list[Event] = []
        window = want
        position = before
        while left > 0 and len(found) < want:
            size = min(window, left, WINDOW_MAX)
            if charge is not None:
                charge.take(size)
            page = await self._backend.read_back(channel, position, size)
            if charge is not None:
                charge.give_back(size - page.read)
            self.entries_read += page.read
            left -= page.read
            for event in page.events:
                seq = event.seq or 0
                if lowest is not None and seq < lowest:
                    return found
                if event.type == CHAT_MESSAGE and (before is None or seq < before):
                    found.append(event)
            if page.older is None or not page.read:
                break
            position = page.older
            window *= 2
        return found
