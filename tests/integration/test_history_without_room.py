"""A room's history is its channel's: `room:<name>` takes messages whether or not the room was
ever created (the chat page reads and writes a room whose join was refused), so history of a
name never created answers what was said there, `[]` when nothing was, while `/members`, the
room's own record, answers 404 (docs/protocol.md)."""

from __future__ import annotations

import httpx

from tests.clients import sign_in
from tests.fixtures.server import ServerFactory


async def test_history_of_a_room_never_created_is_its_channels(
    start_server: ServerFactory,
) -> None:
    server = start_server()
    token, _ = await sign_in(server.url, "ann")
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        empty = await client.get("/api/rooms/unsaid/messages")
        assert empty.status_code == 200, empty.text
        assert empty.json() == {"messages": [], "before": None}
        sent = await client.post(
            "/api/channels/room:ghost/events",
            json={"type": "chat.message", "data": {"text": "anyone here?"}},
        )
        assert sent.status_code == 201, sent.text
        history = await client.get("/api/rooms/ghost/messages")
        assert history.status_code == 200, history.text
        assert [m["id"] for m in history.json()["messages"]] == [sent.json()["id"]]
        for room in ("unsaid", "ghost"):
            members = await client.get(f"/api/rooms/{room}/members")
            assert members.status_code == 404, members.text
            assert members.json()["error"]["code"] == "not_found"
