"""A person publishing large ephemeral events over many rooms: the node keeps recent ephemeral
events for its pollers (each for 10 s, 64 per channel), and `ephemeral_max_bytes` of them in
all, so that spreading them over rooms does not make it hold 64 of them per room."""

from __future__ import annotations

import httpx

from tests.clients import metric, sign_in
from tests.fixtures.server import API_KEY, ServerFactory

ROOMS = 16
PER_ROOM = 8
DATA = "x" * 4096
BOUND = 64 * 1024


async def test_recent_ephemeral_events_are_held_up_to_their_bytes_bound(
    start_server: ServerFactory,
) -> None:
    server = start_server(
        ephemeral_max_bytes=BOUND, publish_burst=ROOMS * PER_ROOM, publish_address_burst=500
    )
    token, _ = await sign_in(server.url, "flooder")
    person = {"Authorization": f"Bearer {token}"}
    service = {"Authorization": f"Bearer {API_KEY}"}
    rooms = [f"room:blob{i}" for i in range(ROOMS)]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        # A poller's cursor in each room, from before the flood (a service: no presence).
        cursors = {}
        for room in rooms:
            answer = await client.get(f"/api/channels/{room}/events", headers=service)
            cursors[room] = answer.json()["next"]
        for n in range(PER_ROOM):
            for room in rooms:
                body = {"type": "blob", "data": {"n": n, "pad": DATA}, "ephemeral": True}
                published = await client.post(
                    f"/api/channels/{room}/events", json=body, headers=person
                )
                assert published.status_code == 201, published.text
        # Each poller asks for what came since its cursor: no more than the bound's worth is
        # still held, across every room, and the newest event is among it.
        seen = []
        for room in rooms:
            answer = await client.get(
                f"/api/channels/{room}/events", params={"after": cursors[room]}, headers=service
            )
            assert answer.status_code == 200, answer.text
            seen += [(room, e["data"]["n"]) for e in answer.json()["events"] if e["type"] == "blob"]
        assert (rooms[-1], PER_ROOM - 1) in seen
        assert len(seen) <= BOUND // len(DATA), len(seen)
        metrics = (await client.get("/metrics")).text
    assert 0 < metric(metrics, "fourcast_ephemeral_bytes") <= BOUND
    published = ROOMS * PER_ROOM
    assert metric(metrics, "fourcast_ephemeral_dropped_total") >= published - len(seen)
