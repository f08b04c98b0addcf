"""A long poll waiting when its person signs out is answered at once, as their next request
would be, never with what was published after the sign-out. On both launch paths."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.web.deps import SESSION_COOKIE
from tests.clients import parked_polls, publish_many, sign_in, until_parked
from tests.fixtures.server import API_KEY, ServerFactory, ServerProcess

LAUNCHES = ["python -m app", "uvicorn"]
SERVICE = {"Authorization": f"Bearer {API_KEY}"}


async def head(client: httpx.AsyncClient, channel: str, headers: dict[str, str]) -> str:
    answer = await client.get(
        f"/api/channels/{channel}/events", params={"after": "0"}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    cursor: str = answer.json()["next"]
    return cursor


async def long_poll(
    client: httpx.AsyncClient, channel: str, headers: dict[str, str], wait: int
) -> httpx.Response:
    after = await head(client, channel, headers)
    return await client.get(
        f"/api/channels/{channel}/events",
        params={"after": after, "wait": str(wait)},
        headers=headers,
    )


async def signed_out_while_waiting(
    server: ServerProcess, channel: str | None, by_cookie: bool
) -> tuple[httpx.Response, httpx.Response]:
    """The leaver's and a stayer's long polls (60 s), both parked when the leaver signs out;
    the leaver's is answered then, while the stayer's still waits (so no wait's end answered
    it); then an event is published to each channel. `channel` None: the leaver's own user
    channel."""
    leaver, left = await sign_in(server.url, "Leaver")
    stayer, stays = await sign_in(server.url, "Stayer")
    mine = channel or f"user:{left['id']}"
    theirs = f"user:{stays['id']}"
    as_leaver = (
        {"Cookie": f"{SESSION_COOKIE}={leaver}"}
        if by_cookie
        else {"Authorization": f"Bearer {leaver}"}
    )
    as_stayer = {"Authorization": f"Bearer {stayer}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=90) as client:
        leaving = asyncio.create_task(long_poll(client, mine, as_leaver, 60))
        staying = asyncio.create_task(long_poll(client, theirs, as_stayer, 60))
        await until_parked(server.url, 2)
        out = await client.delete("/api/session", headers={"Authorization": f"Bearer {leaver}"})
        assert out.status_code == 204
        refused = await leaving
        assert await parked_polls(server.url) == 1 and not staying.done()
        await publish_many(server.url, mine, 1, SERVICE, type="after-sign-out")
        await publish_many(server.url, theirs, 1, SERVICE, type="after-sign-out")
        return refused, await staying


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_a_waiting_long_poll_of_a_person_who_signs_out_answers_401_at_once(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch)
    refused, delivered = await signed_out_while_waiting(server, None, False)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "token_revoked"
    assert delivered.status_code == 200, delivered.text
    assert [event["type"] for event in delivered.json()["events"]] == ["after-sign-out"]


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("channel", ["public:open", None])
async def test_a_signed_out_cookie_reads_as_no_one_when_its_waiting_poll_is_answered(
    start_server: ServerFactory, launch: str, channel: str | None
) -> None:
    """A signed-out session cookie reads as no one: its waiting poll of a public channel gets
    what anyone would (nothing yet, the same cursor to go on from), and of its own user
    channel the 401 anyone would."""
    server = start_server(launch=launch)
    answer, _ = await signed_out_while_waiting(server, channel, True)
    if channel is None:
        assert answer.status_code == 401, answer.text
    else:
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert page["events"] == [] and page["next"] == answer.request.url.params["after"]
