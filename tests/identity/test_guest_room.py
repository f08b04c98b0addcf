"""Guests cannot take sign-out away from anyone: a client signing guests up from many addresses
and out again fills at most `guest_revocation_share` of `max_revocations`, after which guest
sign-ups are refused (503 `guest_signups_full`), and others' sign-outs still land. Guests
signed up before a restart are still counted (from the database)."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest

from app.errors import Unavailable
from app.identity.guestroom import BUCKETS, GuestRoom
from app.identity.revocation import Revocations
from tests.fixtures.server import ServerFactory, ServerProcess

LAUNCHES = ["python -m app", "uvicorn"]
ADDRESSES = [f"127.0.0.{n}" for n in range(2, 8)]
"""The abusing client's source addresses: each may sign up `signup_burst` guests at once."""


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def counter(page: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", page, re.M)
    assert match is not None, name
    return float(match[1])


async def sign_up_from_many_addresses(url: str) -> tuple[list[str], list[httpx.Response]]:
    """Every sign-up the per-address budgets allow: (tokens, refusals)."""
    tokens, refused = [], []
    for address in ADDRESSES:
        transport = httpx.AsyncHTTPTransport(local_address=address)
        async with httpx.AsyncClient(base_url=url, transport=transport, timeout=10) as client:
            for i in range(4):
                response = await client.post("/api/session", json={"name": f"{address} {i}"})
                if response.status_code == 201:
                    tokens.append(response.json()["token"])
                else:
                    refused.append(response)
    return tokens, refused


def start(start_server: ServerFactory, launch: str) -> ServerProcess:
    # 20 sign-outs held at most, 16 of them guests'; 4 sign-ups per address at once.
    return start_server(launch=launch, max_revocations=20, signup_burst=4, signup_rate=0.01)


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_guests_signed_up_and_out_from_many_addresses_leave_others_their_sign_out(
    start_server: ServerFactory, launch: str
) -> None:
    server = start(start_server, launch)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        victim = (await client.post("/api/session", json={"name": "victim"})).json()["token"]
        tokens, refused = await sign_up_from_many_addresses(server.url)
        signed_out = [
            (await client.delete("/api/session", headers=auth(token))).status_code
            for token in tokens
        ]
        # The rest of the bound is there for others: the victim, and a service's revocation.
        out = await client.delete("/api/session", headers=auth(victim))
        assert out.status_code == 204, out.text
        assert (await client.get("/api/session", headers=auth(victim))).status_code == 401
        revoked = await client.delete(
            "/api/people/someone-else/sessions", headers=server.service_headers
        )
        assert revoked.status_code == 204, revoked.text
        assert signed_out == [204] * 15  # 16 guests with the victim: the room for guests
        for response in refused:
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "guest_signups_full"
            assert int(response.headers["retry-after"]) >= 1
        page = (await client.get("/metrics")).text
    assert counter(page, "fourcast_guest_signups_refused_total") == len(refused)
    assert counter(page, "fourcast_revocations_refused_total") == 0


async def test_guests_signed_up_before_a_restart_are_still_counted(
    start_server: ServerFactory,
) -> None:
    server = start(start_server, "python -m app")
    tokens, _ = await sign_up_from_many_addresses(server.url)
    assert len(tokens) == 16
    server.terminate()
    server.start()
    tokens_after, refused = await sign_up_from_many_addresses(server.url)
    assert tokens_after == [] and len(refused) == 4 * len(ADDRESSES)
    assert {r.json()["error"]["code"] for r in refused} == {"guest_signups_full"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for token in tokens:  # each of them may still sign out
            assert (await client.delete("/api/session", headers=auth(token))).status_code == 204


async def test_room_comes_back_as_guests_tokens_and_sign_outs_expire() -> None:
    now = [float(int(time.time()) // 10 * 10)]  # the start of a bucket
    window = 640.0  # buckets of 10 s
    revocations = Revocations(window, max_people=10)
    room = GuestRoom(revocations, window, limit=3, clock=lambda: now[0])
    for _ in range(3):
        await room.admit()
    with pytest.raises(Unavailable) as refused:
        await room.admit()
    assert refused.value.code == "guest_signups_full"
    # The three guests leave the count once their bucket is a whole window old.
    assert refused.value.retry_after == (BUCKETS + 1) * 10
    now[0] += refused.value.retry_after
    await room.admit()
    # A sign-out held counts as well, until it expires.
    revocations.apply("someone", now[0])
    await room.admit()
    with pytest.raises(Unavailable):
        await room.admit()
    assert room.refused == 2


SIGNED_UP, SIGNED_OUT = 10, 8
"""Of 16 guests' room: 10 people, 8 of them signed out, leave room for 6 more (each counted once,
live or held), where counting a signed-out guest twice (18) would leave none."""


async def sign_up(client: httpx.AsyncClient, count: int) -> tuple[list[str], httpx.Response | None]:
    """Up to `count` sign-ups, stopping at the first refusal: (tokens, the refusal)."""
    tokens = []
    for i in range(count):
        response = await client.post("/api/session", json={"name": f"guest {i}"})
        if response.status_code != 201:
            return tokens, response
        tokens.append(response.json()["token"])
    return tokens, None


async def sign_out_at_once(client: httpx.AsyncClient, token: str) -> None:
    """Three sign-outs of one guest at once: one is its first, the others change nothing."""
    outcomes = await asyncio.gather(
        *(client.delete("/api/session", headers=auth(token)) for _ in range(3))
    )
    assert {r.status_code for r in outcomes} <= {204, 401}, [r.text for r in outcomes]
    assert 204 in {r.status_code for r in outcomes}


def assert_full(refusal: httpx.Response | None) -> None:
    assert refusal is not None, "no sign-up was refused"
    assert refusal.status_code == 503, refusal.text
    assert refusal.json()["error"]["code"] == "guest_signups_full"


@pytest.mark.parametrize("layout", ["python -m app", "uvicorn", "two nodes on Redis"])
async def test_a_guest_signed_out_is_counted_once(
    start_server: ServerFactory, request: pytest.FixtureRequest, layout: str
) -> None:
    settings: dict[str, object] = {"max_revocations": 20, "signup_burst": 40, "signup_rate": 0.01}
    if layout == "two nodes on Redis":
        settings["redis_url"] = request.getfixturevalue("redis_url")
        here, there = start_server(**settings), start_server(**settings)
    else:
        here = there = start_server(launch=layout, **settings)
    async with (
        httpx.AsyncClient(base_url=here.url, timeout=10) as client,
        httpx.AsyncClient(base_url=there.url, timeout=10) as other,
    ):
        tokens, refusal = await sign_up(client, SIGNED_UP)
        assert refusal is None, refusal.text
        for token in tokens[:SIGNED_OUT]:  # on the other node, when there are two
            await sign_out_at_once(other, token)
        for token in tokens[:SIGNED_OUT]:  # this node holds the sign-outs as well
            assert (await client.get("/api/session", headers=auth(token))).status_code == 401
        more, refusal = await sign_up(client, 16)
        assert len(more) == 16 - SIGNED_UP, refusal.text if refusal else more
        assert_full(refusal)
        page = (await client.get("/metrics")).text
    assert counter(page, "fourcast_guest_signups_refused_total") == 1


async def test_guests_signed_out_before_a_restart_are_counted_once(
    start_server: ServerFactory,
) -> None:
    server = start_server(max_revocations=20, signup_burst=40, signup_rate=0.01)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        tokens, _ = await sign_up(client, SIGNED_UP)
        for token in tokens[:SIGNED_OUT]:
            await sign_out_at_once(client, token)
    server.terminate()
    server.start()
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        more, refusal = await sign_up(client, 16)
    assert len(more) == 16 - SIGNED_UP
    assert_full(refusal)
