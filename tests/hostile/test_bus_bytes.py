"""A person publishing large events round a few rooms: the in-process bus keeps each channel's
last `history_size` events in memory, so its logs are bounded by the bytes they hold
(`bus_max_bytes`), not only by how many there are; a log let go is read back from the journal,
and no event is lost."""

from __future__ import annotations

import httpx

from tests.clients import metric, sign_in
from tests.fixtures.server import API_KEY, ServerFactory

ROOMS = 8
PER_ROOM = 16
DATA = "x" * 16384
BOUND = 1024 * 1024


async def test_channel_logs_in_memory_are_bounded_by_their_bytes(
    start_server: ServerFactory,
) -> None:
    server = start_server(
        bus_max_bytes=BOUND, publish_burst=ROOMS * PER_ROOM, publish_address_burst=500
    )
    token, _ = await sign_in(server.url, "writer")
    person = {"Authorization": f"Bearer {token}"}
    rooms = [f"room:big{i}" for i in range(ROOMS)]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for n in range(PER_ROOM):
            for room in rooms:
                body = {"type": "blob", "data": {"n": n, "pad": DATA}}
                published = await client.post(
                    f"/api/channels/{room}/events", json=body, headers=person
                )
                assert published.status_code == 201, published.text
        metrics = (await client.get("/metrics")).text
        # Far fewer logs than bus_max_channels, none idle: only the bytes bound let them go.
        assert metric(metrics, "fourcast_bus_channels_evicted_total") > 0
        assert 0 < metric(metrics, "fourcast_bus_bytes_in_memory") <= BOUND
        # Nothing is lost: each room's events come back from the journal, in order.
        service = {"Authorization": f"Bearer {API_KEY}"}
        for room in rooms:
            answer = await client.get(
                f"/api/channels/{room}/events", params={"after": "0"}, headers=service
            )
            assert answer.status_code == 200, answer.text
            assert [e["data"]["n"] for e in answer.json()["events"]] == list(range(PER_ROOM))
