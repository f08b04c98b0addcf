"""KnownEpochs and the database's remembered epoch: the archive is scanned only while the database
remembers none, and a new epoch is written in the background, again after a failure."""

from __future__ import annotations

import asyncio

from app.bus import BusUnavailable, NullJournal
from app.bus.redis.epoch import KnownEpochs
from app.bus.redis.streams import SEQ_BITS


class RememberingJournal(NullJournal):
    def __init__(self, highest_cursor: int) -> None:
        self.cursor = highest_cursor
        self.epoch: int | None = None
        self.scans = 0
        self.failures = 0
        self.written = asyncio.Event()

    async def highest_cursor(self) -> int:
        self.scans += 1
        return self.cursor

    async def remembered_epoch(self) -> int | None:
        return self.epoch

    async def remember_epoch(self, epoch: int) -> None:
        if self.failures:
            self.failures -= 1
            raise BusUnavailable("database away")
        self.epoch = max(epoch, self.epoch or 0)
        self.written.set()


async def test_the_archive_is_scanned_once_then_the_row_is_read() -> None:
    journal = RememberingJournal(40 << SEQ_BITS | 3)
    first, second = KnownEpochs(), KnownEpochs()
    await first.load(journal)
    await second.load(journal)
    assert (first.highest, second.highest) == (40, 40)
    assert journal.scans == 1 and journal.epoch == 40


async def test_a_new_epoch_is_remembered_in_the_background_and_again_after_a_failure() -> None:
    journal = RememberingJournal(0)
    known = KnownEpochs()
    await known.load(journal)
    journal.written.clear()
    journal.failures = 1
    task = known.start()
    try:
        known.saw(900)
        await asyncio.wait_for(journal.written.wait(), 10)
        assert journal.epoch == 900
        journal.written.clear()
        known.saw(800)  # lower: nothing to write
        known.saw(1700)
        await asyncio.wait_for(journal.written.wait(), 10)
        assert journal.epoch == 1700
    finally:
        await known.stop()
    assert task.done()


async def test_an_epoch_not_yet_remembered_is_written_as_the_node_stops() -> None:
    journal = RememberingJournal(0)
    known = KnownEpochs()
    await known.load(journal)
    known.saw(77)  # the task never started: only the stop writes it
    await known.stop()
    assert journal.epoch == 77
