"""Reading a channel back from a cursor, newest first, on every backend: what a room history
page reads of the bus, a window at a time, instead of the whole retained log."""

from __future__ import annotations

from app.bus import Bus
from tests.bus.conftest import MakeBus
from tests.bus.helpers import publish, publish_one, seqs


async def test_reading_back_pages_the_retained_history_newest_first(make_bus: MakeBus) -> None:
    bus = await make_bus(history_size=8)
    backend = bus.backend
    ch = "room:back"
    events = [e for _ in range(4) for e in await publish(bus, ch, 5)]
    retained = (await bus.read(ch, None, 1000)).events
    assert seqs(retained) == seqs(events[-8:])
    assert await backend.retained_below(ch, None) == 8
    assert await backend.retained_below(ch, retained[3].seq) == 3

    pages, before, read = [], None, 0
    while True:
        page = await backend.read_back(ch, before, 3)
        assert page.read <= 3
        pages.append(seqs(page.events))
        read += page.read
        if page.older is None:
            break
        before = page.older
        assert len(pages) < 8, pages
    assert [seq for page in pages for seq in page] == seqs(retained)[::-1]
    assert pages[0] == seqs(retained[-3:])[::-1]
    assert read <= 9  # the retained eight, and on Redis one trimmed from sight at most

    below = await backend.read_back(ch, retained[5].seq, 2)
    assert seqs(below.events) == seqs(retained[3:5])[::-1]
    assert below.older == retained[3].seq


async def test_a_cursor_not_retained_has_nothing_below_it(make_bus: MakeBus) -> None:
    bus = await make_bus(history_size=8)
    backend = bus.backend
    ch = "room:back-gone"
    events = [e for _ in range(4) for e in await publish(bus, ch, 5)]
    head = events[-1].seq
    assert head is not None
    for cursor in (0, events[0].seq, head + 1000):
        assert await backend.retained_below(ch, cursor) == 0, cursor


async def test_a_channel_never_written_reads_back_empty(bus: Bus) -> None:
    backend = bus.backend
    assert await backend.retained_below("room:back-never", None) == 0
    page = await backend.read_back("room:back-never", None, 10)
    assert page.events == [] and page.older is None
    only = await publish_one(bus, "room:back-one")
    assert await backend.retained_below("room:back-one", None) == 1
    page = await backend.read_back("room:back-one", None, 10)
    assert seqs(page.events) == [only.seq] and page.older is None and page.read == 1
