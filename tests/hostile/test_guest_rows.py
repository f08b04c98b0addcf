"""What one client address can make the server keep or send, however many guests it signs up:
each guest has budgets of its own, so a bound per person alone multiplies by the sign-ups."""

from __future__ import annotations

import httpx
import pytest

from tests.clients import WsReader, sign_in
from tests.fixtures.server import ServerFactory


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_rooms_from_one_address_are_bounded_whoever_signed_up(
    start_server: ServerFactory, launch: str
) -> None:
    # Four guests from one address, each with a person's budget of three rooms: twelve rooms
    # by their own budgets, but the address may make five (and no more for a long while).
    server = start_server(
        launch=launch,
        signup_burst=4,
        room_burst=3,
        room_address_burst=5,
        room_address_rate=0.001,
    )
    tokens = [(await sign_in(server.url, f"guest{n}"))[0] for n in range(4)]
    answers = []
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for n, token in enumerate(tokens):
            auth = {"Authorization": f"Bearer {token}"}
            answers.append(await client.post("/api/rooms", json={"name": f"g{n}"}, headers=auth))
            for k in range(2):
                answers.append(await client.post(f"/api/rooms/g{n}-{k}/join", headers=auth))
        statuses = [a.status_code for a in answers]
        assert statuses == [201, 200, 200, 201, 200] + [429] * 7, statuses
        refused = answers[5]  # the second guest's, with two of its own three rooms left
        assert "from this address" in refused.json()["error"]["message"]
        assert int(refused.headers["retry-after"]) >= 1
        rooms = (await client.get("/api/rooms")).json()["rooms"]
        assert sorted(r["name"] for r in rooms) == ["g0", "g0-0", "g0-1", "g1", "g1-0"]
        metrics = (await client.get("/metrics")).text
    assert 'fourcast_budget_refusals_total{budget="room_address"} 7.0' in metrics
    assert 'fourcast_budget_refusals_total{budget="room"} 0.0' in metrics


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_one_address_polling_many_rooms_leaves_others_present(
    start_server: ServerFactory, launch: str
) -> None:
    # Room for 12 presence entries on the node, 8 of them from any one address (the proxy in
    # front, trusted, says who is where). A guest at one address polls 12 rooms, one entry each.
    server = start_server(
        launch=launch,
        trusted_proxies="127.0.0.1",
        max_presence_entries=12,
        max_presence_per_address=8,
    )
    mallory, _ = await sign_in(server.url, "mallory")
    alice, _ = await sign_in(server.url, "alice")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        there = {"Authorization": f"Bearer {mallory}", "X-Forwarded-For": "203.0.113.66"}
        for n in range(12):
            poll = await client.get(f"/api/channels/room:m{n}/events?after=1", headers=there)
            assert poll.status_code == 200, poll.text
        here = {"Authorization": f"Bearer {alice}", "X-Forwarded-For": "198.51.100.7"}
        poll = await client.get("/api/channels/room:honest/events?after=1", headers=here)
        assert [e["type"] for e in poll.json()["events"]] == ["presence.join"]
        members = (await client.get("/api/channels/room:honest/presence", headers=here)).json()
        assert [m["name"] for m in members["members"]] == ["alice"]
        metrics = (await client.get("/metrics")).text
    assert "fourcast_presence_entries 9.0" in metrics
    assert "fourcast_presence_untracked_per_address_total 4.0" in metrics
    assert "fourcast_presence_untracked_total 0.0" in metrics


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_publishes_from_one_address_are_bounded_whoever_signed_up(
    start_server: ServerFactory, launch: str
) -> None:
    # Three guests at one address, three publishes each by their own budgets: the address may
    # make five (a token back every 1000 s: none refills during the test).
    server = start_server(
        launch=launch,
        publish_burst=3,
        publish_rate=0.001,
        publish_address_burst=5,
        publish_address_rate=0.001,
    )
    tokens = [(await sign_in(server.url, f"guest{n}"))[0] for n in range(4)]
    answers = []
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for n, token in enumerate(tokens[:3]):
            auth = {"Authorization": f"Bearer {token}"}
            for k in range(3):
                data = {"text": f"{n}.{k}"}
                answers.append(
                    await client.post(
                        "/api/channels/room:flood/events",
                        json={"type": "chat.message", "data": data},
                        headers=auth,
                    )
                )
        statuses = [a.status_code for a in answers]
        assert statuses == [201] * 5 + [429] * 4, statuses
        refused = answers[5]  # the second guest's third, within its own budget
        assert "from this address" in refused.json()["error"]["message"]
        assert int(refused.headers["retry-after"]) >= 1
        # The fourth guest, on a WebSocket, with its whole budget: the address's is spent.
        ws = await WsReader(server.url, "room:flood", token=tokens[3]).start()
        reply = await ws.request(
            {
                "op": "publish",
                "channel": "room:flood",
                "type": "chat.message",
                "data": {"text": "x"},
            }
        )
        await ws.stop()
        assert reply["op"] == "error" and reply["code"] == "rate_limited", reply
        assert reply["retry_after"] > 0
        page = (await client.get("/api/channels/room:flood/events?after=0", headers=auth)).json()
        texts = [e["data"]["text"] for e in page["events"] if e["type"] == "chat.message"]
        assert texts == ["0.0", "0.1", "0.2", "1.0", "1.1"]
        metrics = (await client.get("/metrics")).text
    assert 'fourcast_budget_refusals_total{budget="publish_address"} 5.0' in metrics


async def test_each_budget_keeps_buckets_for_at_most_its_bound_of_keys(
    start_server: ServerFactory,
) -> None:
    """Sign-ups from five addresses (a trusted proxy says which) into a budget that keeps three
    keys: the oldest are forgotten, and the metric says how many are kept."""
    server = start_server(trusted_proxies="127.0.0.1", max_budget_keys=3)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for n in range(5):
            signed = await client.post(
                "/api/session",
                json={"name": f"guest {n}"},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            )
            assert signed.status_code in (200, 201), signed.text
            client.cookies.clear()
        metrics = (await client.get("/metrics")).text
    assert 'fourcast_budget_keys{budget="signup"} 3.0' in metrics, metrics
    assert 'fourcast_budget_keys{budget="typing"} 0.0' in metrics
