"""Room history on Redis reads the bus back from the page's own position, as far as the page
needs, and its reader pays for what it reads, before it is read.

A page merges the SQL archive's messages with the newest the bus retains (the archive lingers
behind it). It used to read the bus's whole retained window (`history_size` events of up to
64 KiB) for the first page and for every page whose `before` Redis held, and to charge the
read-from-the-start budget only for a page with messages: a room of other events made every
page expensive, and free. History is read over REST only, which both launch paths serve alike:
one `python -m app` node.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.clients import sign_in
from tests.fixtures.server import ServerFactory, ServerProcess

pytestmark = pytest.mark.redis

LIMIT = 10
HISTORY = 500
OTHERS = 400
"""Non-chat events between the room's old messages and its new ones."""


def _entries_read(metrics: str) -> int:
    name = "fourcast_history_bus_entries_read_total "
    line = next(ln for ln in metrics.splitlines() if ln.startswith(name))
    return int(float(line.split()[1]))


async def _publish_others(client: httpx.AsyncClient, node: ServerProcess, room: str) -> None:
    limit = asyncio.Semaphore(8)

    async def one(n: int) -> None:
        async with limit:
            published = await client.post(
                f"/api/channels/room:{room}/events",
                json={"type": "blob", "data": {"n": n, "pad": "x" * 200}},
                headers=node.service_headers,
            )
            assert published.status_code == 201, published.text

    await asyncio.gather(*(one(n) for n in range(OTHERS)))


async def _post(client: httpx.AsyncClient, room: str, texts: list[str]) -> None:
    for text in texts:
        posted = await client.post(
            f"/api/channels/room:{room}/events",
            json={"type": "chat.message", "data": {"text": text}},
        )
        assert posted.status_code == 201, posted.text


def _lag(metrics: str) -> float:
    line = next(ln for ln in metrics.splitlines() if ln.startswith("fourcast_archive_lag_events "))
    return float(line.split()[1])


@pytest.mark.parametrize("linger", [0, 10_000], ids=["archived", "archive-behind"])
async def test_history_pages_read_the_bus_from_their_own_position_and_pay_for_it(
    start_server: ServerFactory, redis_url: str, linger: int
) -> None:
    """Exact pages whether the SQL archive has the messages or not: lingering 10 s, it writes
    its first full batch (500 events: the other room's and the oldest of this one) at once, and
    the rest only after the pages are read (checked on the archive-lag gauge)."""
    node = start_server(
        redis_url=redis_url,
        archive_linger_ms=linger,
        history_size=HISTORY,
        publish_rate=1000,
        publish_burst=1000,
        read_all_rate=0.01,  # what the pages spend is not refilled while the test runs
    )
    ann, _ = await sign_in(node.url, "ann")
    bob, _ = await sign_in(node.url, "bob")
    old = [f"old{n}" for n in range(40)]
    new = [f"new{n}" for n in range(40)]
    async with (
        httpx.AsyncClient(
            base_url=node.url, headers={"Authorization": f"Bearer {ann}"}, timeout=30
        ) as client,
        httpx.AsyncClient(
            base_url=node.url, headers={"Authorization": f"Bearer {bob}"}, timeout=30
        ) as looper,
    ):
        for room in ("mixed", "others"):
            assert (await client.post("/api/rooms", json={"name": room})).status_code == 201
        await _publish_others(client, node, "others")
        await _post(client, "mixed", old)
        await _publish_others(client, node, "mixed")
        await _post(client, "mixed", new)

        async def read() -> int:
            response = await client.get("/metrics", headers=node.service_headers)
            return _entries_read(response.text)

        # A loop over a page with nothing but other events below it: each reads the retained
        # window, and pays for it, so the loop is refused (429) before long.
        codes = []
        for _ in range(10):
            response = await looper.get("/api/rooms/others/messages")
            codes.append(response.status_code)
            if response.status_code == 429:
                assert response.json()["error"]["code"] == "rate_limited"
                break
            assert response.json()["messages"] == []
        assert codes[-1] == 429 and codes[0] == 200, codes
        assert await read() <= len(codes) * OTHERS, "read past the retained window"

        # Scrolling the room a page at a time: each page reads about its own size of the bus,
        # from its own position, except where its messages lie across the others.
        pages: list[list[str]] = []
        costs: list[int] = []
        params: dict[str, Any] = {"limit": LIMIT}
        while True:
            before = await read()
            response = await client.get("/api/rooms/mixed/messages", params=params)
            assert response.status_code == 200, response.text
            costs.append(await read() - before)
            page = response.json()
            pages.append([m["data"]["text"] for m in page["messages"]])
            if page["before"] is None:
                break
            assert len(pages) <= 10, pages
            params["before"] = page["before"]
        assert [text for page in reversed(pages) for text in page] == old + new
        # The two pages whose `limit + 1` messages lie on both sides of the others read them.
        across = len(new) // LIMIT - 1
        assert max(costs[:across] + costs[across + 2 :]) <= 2 * (LIMIT + 1), costs
        assert max(costs[across : across + 2]) <= 2 * (OTHERS + LIMIT + 1), costs
        if linger:
            metrics = (await client.get("/metrics", headers=node.service_headers)).text
            assert _lag(metrics) >= len(new), "the archive caught up: the test proved less"
