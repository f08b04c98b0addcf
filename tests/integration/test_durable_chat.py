"""A chat message is never ephemeral: one live readers saw and room history never kept would
vanish on reload. Refused on every way in (REST publish, WebSocket publish op; people and
services), on both launch paths."""

from __future__ import annotations

import httpx
import orjson
import pytest
import websockets

from tests.clients import sign_in
from tests.fixtures.server import API_KEY, ServerFactory

LAUNCHES = ["python -m app", "uvicorn"]
MESSAGE = {"type": "chat.message", "data": {"text": "gone on reload?"}, "ephemeral": True}


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_an_ephemeral_chat_message_is_refused_and_history_keeps_every_one(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch)
    token, _ = await sign_in(server.url, "alice")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for key in (token, API_KEY):
            refused = await client.post(
                "/api/channels/room:lobby/events",
                json=MESSAGE,
                headers={"Authorization": f"Bearer {key}"},
            )
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["code"] == "ephemeral_not_allowed"
        async with websockets.connect(
            server.ws_url,
            subprotocols=["fourcast.v1", f"fourcast.bearer.{token}"],  # type: ignore[list-item]
        ) as ws:
            assert orjson.loads(await ws.recv())["op"] == "welcome"
            publish = {"op": "publish", "channel": "room:lobby", "ref": 1, **MESSAGE}
            await ws.send(orjson.dumps(publish).decode())
            reply = orjson.loads(await ws.recv())
            assert reply["op"] == "error" and reply["ref"] == 1, reply
            assert reply["code"] == "ephemeral_not_allowed", reply
            # Other ephemeral events of a room still are (a typing signal).
            typing = {"op": "publish", "channel": "room:lobby", "ref": 2, "type": "typing"}
            await ws.send(orjson.dumps({**typing, "data": {}, "ephemeral": True}).decode())
            assert orjson.loads(await ws.recv())["op"] == "ack"
        kept = await client.post(
            "/api/channels/room:lobby/events",
            json={**MESSAGE, "ephemeral": False},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert kept.status_code == 201, kept.text
        history = await client.get(
            "/api/rooms/lobby/messages", headers={"Authorization": f"Bearer {token}"}
        )
    assert [m["id"] for m in history.json()["messages"]] == [kept.json()["id"]]
