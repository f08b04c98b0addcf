"""A long poll waiting when its person signs out is answered 401, never with what was published
after the sign-out: at the event that wakes it, or at its wait's end. On both launch paths."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.clients import publish_many, sign_in, until_parked
from tests.fixtures.server import API_KEY, ServerFactory

LAUNCHES = ["python -m app", "uvicorn"]
SERVICE = {"Authorization": f"Bearer {API_KEY}"}


async def head(client: httpx.AsyncClient, channel: str, token: str) -> str:
    answer = await client.get(
        f"/api/channels/{channel}/events",
        params={"after": "0"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    cursor: str = answer.json()["next"]
    return cursor


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("woken_by", ["an event", "its wait's end"])
async def test_a_waiting_long_poll_of_a_person_who_signs_out_answers_401(
    start_server: ServerFactory, launch: str, woken_by: str
) -> None:
    server = start_server(launch=launch)
    leaver, left = await sign_in(server.url, "Leaver")
    stayer, stays = await sign_in(server.url, "Stayer")
    mine, theirs = f"user:{left['id']}", f"user:{stays['id']}"
    wait = "30" if woken_by == "an event" else "2"
    async with httpx.AsyncClient(base_url=server.url, timeout=40) as client:

        async def long_poll(channel: str, token: str) -> httpx.Response:
            return await client.get(
                f"/api/channels/{channel}/events",
                params={"after": await head(client, channel, token), "wait": wait},
                headers={"Authorization": f"Bearer {token}"},
            )

        leaving = asyncio.create_task(long_poll(mine, leaver))
        staying = asyncio.create_task(long_poll(theirs, stayer))
        await until_parked(server.url, 2)
        out = await client.delete("/api/session", headers={"Authorization": f"Bearer {leaver}"})
        assert out.status_code == 204
        if woken_by == "an event":
            await publish_many(server.url, mine, 1, SERVICE, type="after-sign-out")
            await publish_many(server.url, theirs, 1, SERVICE, type="after-sign-out")
        refused, delivered = await leaving, await staying
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "token_revoked"
    assert "after-sign-out" not in refused.text
    assert delivered.status_code == 200, delivered.text
    types = [event["type"] for event in delivered.json()["events"]]
    assert types == (["after-sign-out"] if woken_by == "an event" else [])
