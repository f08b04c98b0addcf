"""A single-use ticket is spent only by a request that is going to be served: a poll or stream
refused with 400 or 403, a HEAD of a stream, a WebSocket or long poll refused at a connection cap
or a stream over its budgets leaves it usable, and a poll refused only as it is answered (over
the read-from-the-start budget) gives it back, as docs/protocol.md says. On both launch paths."""

from __future__ import annotations

import httpx
import pytest
import websockets

from tests.clients import eventually, sign_in
from tests.fixtures.server import ServerFactory

LAUNCHES = ["python -m app", "uvicorn"]
EVENTS, STREAM = "/api/channels/public:x/events", "/api/channels/public:x/stream"


async def ticket_of(client: httpx.AsyncClient, token: str) -> str:
    issued = await client.post("/api/tickets", headers={"Authorization": f"Bearer {token}"})
    assert issued.status_code == 201, issued.text
    return str(issued.json()["ticket"])


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_refused_request_leaves_its_ticket_usable(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch)
    token, _ = await sign_in(server.url, "Reader")
    refusals = [
        ("GET", EVENTS, {"after": "bad"}, 400),
        ("GET", EVENTS, {"limit": "0"}, 400),
        ("GET", "/api/channels/user:someone-else/events", {}, 403),
        ("GET", STREAM, {"after": "bad"}, 400),
        ("HEAD", STREAM, {}, 200),
    ]
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for method, path, params, status in refusals:
            ticket = await ticket_of(client, token)
            refused = await client.request(method, path, params={"ticket": ticket, **params})
            assert refused.status_code == status, (method, path, params, refused.text)
            served = await client.get(EVENTS, params={"ticket": ticket})
            assert served.status_code == 200, (method, path, params, served.text)
            again = await client.get(EVENTS, params={"ticket": ticket})
            assert again.status_code == 401 and again.json()["error"]["code"] == "invalid_ticket"


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_websocket_refused_at_a_cap_leaves_its_ticket_usable(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch, max_connections_per_user=1)
    token, _ = await sign_in(server.url, "Reader")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        ticket = await ticket_of(client, token)

        async def none_held() -> bool:
            text = (await client.get("/metrics")).text
            return "\nfourcast_connections_held 0.0\n" in text

        async with client.stream("GET", STREAM, headers=headers) as stream:
            assert stream.status_code == 200
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(f"{server.ws_url}?ticket={ticket}"):
                    pass
            assert refused.value.response.status_code == 429
        await eventually(none_held)  # the stream's slot is free again
    async with websockets.connect(f"{server.ws_url}?ticket={ticket}"):
        pass  # opened with the ticket the refusal left unspent


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_long_poll_refused_at_a_cap_leaves_its_ticket_usable(
    start_server: ServerFactory, launch: str
) -> None:
    """Its ticket is spent once the poll is held (or answered), not before the cap refuses it."""
    server = start_server(launch=launch, max_connections_per_user=1)
    token, _ = await sign_in(server.url, "Reader")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        ticket = await ticket_of(client, token)
        head = (await client.get(EVENTS)).json()["next"]

        async def none_held() -> bool:
            text = (await client.get("/metrics")).text
            return "\nfourcast_connections_held 0.0\n" in text

        async with client.stream("GET", STREAM, headers=headers) as stream:
            assert stream.status_code == 200
            refused = await client.get(EVENTS, params={"ticket": ticket, "after": head, "wait": 30})
            assert refused.status_code == 429, refused.text
        await eventually(none_held)  # the stream's slot is free again
        served = await client.get(EVENTS, params={"ticket": ticket, "after": head})
        assert served.status_code == 200, served.text
        again = await client.get(EVENTS, params={"ticket": ticket})
        assert again.status_code == 401 and again.json()["error"]["code"] == "invalid_ticket"


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_poll_refused_as_it_is_answered_leaves_its_ticket_usable(
    start_server: ServerFactory, launch: str
) -> None:
    """A short or long poll over the read-from-the-start budget is refused (429) only as the
    poll core answers it, after its ticket was claimed: the refusal gives the ticket back."""
    server = start_server(launch=launch, read_all_burst=1, read_all_rate=0.0001)
    token, _ = await sign_in(server.url, "Reader")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        kept = await client.post(
            EVENTS, json={"type": "note", "data": {}}, headers=server.service_headers
        )
        assert kept.status_code in (200, 201), kept.text
        first = await client.get(EVENTS, headers=headers)  # the whole budget: one read
        assert first.status_code == 200 and first.json()["events"], first.text
        ticket = await ticket_of(client, token)
        # A stream from 0 is refused over the same budget before its ticket is spent...
        stream = await client.get(STREAM, params={"ticket": ticket, "after": "0"})
        assert stream.status_code == 429, stream.text
        # ...a short poll and a long poll (from 0: answered at once) as they are answered.
        for params in ({}, {"after": "0", "wait": "30"}):
            refused = await client.get(EVENTS, params={"ticket": ticket, **params})
            assert refused.status_code == 429, (params, refused.text)
        head = first.json()["next"]  # a read that is not from the start: no budget to spend
        served = await client.get(EVENTS, params={"ticket": ticket, "after": head})
        assert served.status_code == 200, served.text
        again = await client.get(EVENTS, params={"ticket": ticket, "after": head})
        assert again.status_code == 401 and again.json()["error"]["code"] == "invalid_ticket"
