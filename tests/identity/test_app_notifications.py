"""Notifications to people whose tokens come from the embedding application: they have no
account here until they come, and may be sent notifications before and after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.clients import WsReader
from tests.fixtures.server import ServerProcess, Servers
from tests.identity.backend import Backend


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    return Backend(tmp_path_factory.mktemp("backend"))


@pytest.fixture(scope="module")
def app_server(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    servers = Servers(tmp_path_factory.mktemp("appnotify"))
    yield servers.start(app_jwks_file=backend.jwks_file)
    servers.stop_all()


async def notify(client: httpx.AsyncClient, server: ServerProcess, user: str) -> httpx.Response:
    return await client.post(
        "/api/notifications",
        json={"user": user, "title": "you have mail"},
        headers=server.service_headers,
    )


async def test_a_person_reading_with_an_application_token_is_notified(
    app_server: ServerProcess, backend: Backend
) -> None:
    sub = f"ext-{uuid.uuid4().hex[:10]}"
    token = backend.mint(sub, name="Ext Person")
    reader = await WsReader(app_server.url, f"user:{sub}", token=token).start()
    try:
        async with httpx.AsyncClient(base_url=app_server.url, timeout=10) as client:
            sent = await notify(client, app_server, sub)
            assert sent.status_code == 201, sent.text
            await reader.wait_for(1, timeout=10)
            assert [(e["type"], e["data"]["id"]) for e in reader.durable] == [
                ("notification", sent.json()["id"])
            ]
            mine = await client.get(
                "/api/notifications", headers={"Authorization": f"Bearer {token}"}
            )
            assert mine.status_code == 200, mine.text
            assert mine.json()["unread"] == 1
    finally:
        await reader.stop()


async def test_a_person_not_come_yet_finds_it_and_keeps_their_name(
    app_server: ServerProcess, backend: Backend
) -> None:
    sub = f"ext-{uuid.uuid4().hex[:10]}"
    async with httpx.AsyncClient(base_url=app_server.url, timeout=10) as client:
        sent = await notify(client, app_server, sub)
        assert sent.status_code == 201, sent.text
        # They come later: the notification waits on their channel and in their list.
        auth = {"Authorization": f"Bearer {backend.mint(sub, name='Late Comer')}"}
        events = await client.get(
            f"/api/channels/user:{sub}/events", params={"after": "0"}, headers=auth
        )
        assert [e["data"]["id"] for e in events.json()["events"]] == [sent.json()["id"]]
        listed = (await client.get("/api/notifications", headers=auth)).json()
        assert [n["id"] for n in listed["notifications"]] == [sent.json()["id"]]
        # The row made for them takes the name their token gives when they come.
        room = f"r{uuid.uuid4().hex[:8]}"
        joined = await client.post(f"/api/rooms/{room}/join", headers=auth)
        assert joined.status_code == 200, joined.text
        members = (await client.get(f"/api/rooms/{room}/members", headers=auth)).json()
        assert [(m["user"], m["name"]) for m in members["members"]] == [(sub, "Late Comer")]
