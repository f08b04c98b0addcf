"""CSRF (same-site and JSON bodies), scoped API keys, tickets, sign-out and names on one node."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest
import websockets

from tests.clients import WsReader, sign_in
from tests.fixtures.server import API_KEY, ServerFactory, ServerProcess

PRICES_KEY = "prices-key-0123456789abcdef"


async def test_a_cookie_post_needs_an_origin_or_same_origin_fetch_metadata(
    shared_server: ServerProcess,
) -> None:
    token, _ = await sign_in(shared_server.url, "Cookie")
    async with httpx.AsyncClient(base_url=shared_server.url, timeout=10) as client:
        client.cookies.set("fourcast_session", token)
        body = {"type": "t", "data": 1}
        bare = await client.post("/api/channels/room:csrf/events", json=body)
        assert bare.status_code == 403 and bare.json()["error"]["code"] == "bad_origin"
        same_site = await client.post(
            "/api/channels/room:csrf/events", json=body, headers={"Sec-Fetch-Site": "same-origin"}
        )
        assert same_site.status_code == 201, same_site.text
        cross_site = await client.post(
            "/api/channels/room:csrf/events", json=body, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert cross_site.status_code == 403
        # A bearer-authenticated caller is no browser page: no Origin needed.
        client.cookies.clear()
        bearer = await client.post(
            "/api/channels/room:csrf/events",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert bearer.status_code == 201


async def test_a_text_plain_body_is_415(shared_server: ServerProcess) -> None:
    token, _ = await sign_in(shared_server.url, "Plain")
    payload = b'{"type": "t", "data": 1}'
    async with httpx.AsyncClient(base_url=shared_server.url, timeout=10) as client:
        for headers in (
            {"Authorization": f"Bearer {token}"},
            {"Authorization": f"Bearer {API_KEY}"},
        ):
            response = await client.post(
                "/api/channels/room:csrf/events",
                content=payload,
                headers={**headers, "Content-Type": "text/plain"},
            )
            assert response.status_code == 415, response.text
            assert response.json()["error"]["code"] == "unsupported_media_type"
        client.cookies.set("fourcast_session", token)
        form = await client.post(
            "/api/channels/room:csrf/events",
            content=payload,
            headers={
                "Origin": shared_server.url,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        assert form.status_code == 415
        signup = await client.post(
            "/api/session", content=b'{"name": "x"}', headers={"Content-Type": "text/plain"}
        )
        assert signup.status_code == 415


async def test_a_key_scoped_to_a_pattern_publishes_there_only(start_server: ServerFactory) -> None:
    server = start_server(api_keys=f"tests:{API_KEY},prices:{PRICES_KEY}:public:prices*")
    headers = {"Authorization": f"Bearer {PRICES_KEY}"}
    body = {"type": "tick", "data": {"eur": 1}}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as client:
        ok = await client.post("/api/channels/public:prices.eur/events", json=body)
        assert ok.status_code == 201, ok.text
        refused = await client.post("/api/channels/public:other/events", json=body)
        assert refused.status_code == 403
        assert (await client.get("/api/channels/user:someone/events")).status_code == 403
        assert (await client.get("/api/channels/public:prices.eur/events")).status_code == 200
        # A scoped key cannot sign people out; the unscoped key of the old form still can.
        revoke = await client.delete("/api/people/someone/sessions")
        assert revoke.status_code == 403
        full = await client.post(
            "/api/channels/public:other/events", json=body, headers=server.service_headers
        )
        assert full.status_code == 201
        # Nor reach a person's channel through a notification (delivered on `user:<id>`).
        token, user = await sign_in(server.url, "Nora")
        note = {"user": user["id"], "title": "hello"}
        scoped = await client.post("/api/notifications", json=note)
        assert scoped.status_code == 403, scoped.text
        hers = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/api/notifications", headers=hers)).json()["unread"] == 0
        sent = await client.post("/api/notifications", json=note, headers=server.service_headers)
        assert sent.status_code == 201, sent.text


async def test_a_ticket_cannot_mint_a_ticket_and_tickets_and_sign_outs_survive_restarts(
    start_server: ServerFactory,
) -> None:
    server = start_server()
    token, user = await sign_in(server.url, "Tix")
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        first = (await client.post("/api/tickets", headers=auth)).json()["ticket"]
        renewed = await client.post("/api/tickets", params={"ticket": first})
        assert renewed.status_code == 401
        second = (await client.post("/api/tickets", headers=auth)).json()["ticket"]
        channel = f"/api/channels/user:{user['id']}/events"
        assert (await client.get(channel, params={"ticket": second})).status_code == 200
        gone, _ = await sign_in(server.url, "Gone")
        out = await client.delete("/api/session", headers={"Authorization": f"Bearer {gone}"})
        assert out.status_code == 204
    server.stop()
    server.start()
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        again = await client.get(channel, params={"ticket": second})
        assert again.status_code == 401 and again.json()["error"]["code"] == "invalid_ticket"
        # The sign-out holds across the restart too; the other session does not suffer.
        for credential, status in ((gone, 401), (token, 200)):
            me = await client.get("/api/session", headers={"Authorization": f"Bearer {credential}"})
            assert me.status_code == status


async def test_a_ticket_opens_a_connection_and_acts_nowhere_else(
    start_server: ServerFactory,
) -> None:
    """A service's ticket handed to a browser for a stream cannot sign people out, publish or
    send notifications as the service; it still opens the stream."""
    server = start_server()
    victim_token, victim = await sign_in(server.url, "Victim")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:

        async def ticket() -> str:
            issued = await client.post("/api/tickets", headers=server.service_headers)
            assert issued.status_code == 201, issued.text
            return str(issued.json()["ticket"])

        attempts = [
            ("DELETE", f"/api/people/{victim['id']}/sessions", None),
            ("POST", "/api/channels/room:x/events", {"type": "chat.message", "data": {}}),
            ("POST", "/api/notifications", {"user": victim["id"], "title": "t", "body": "b"}),
        ]
        for method, path, body in attempts:
            refused = await client.request(
                method, path, params={"ticket": await ticket()}, json=body
            )
            assert refused.status_code == 401, (path, refused.text)
            assert refused.json()["error"]["code"] == "invalid_ticket"
        # Nothing was done: the person is still signed in.
        me = await client.get("/api/session", headers={"Authorization": f"Bearer {victim_token}"})
        assert me.status_code == 200
        opened = await client.get(
            "/api/channels/public:x/events", params={"ticket": await ticket()}
        )
        assert opened.status_code == 200, opened.text


async def test_a_connection_opened_by_ticket_expires_with_its_session(
    start_server: ServerFactory,
) -> None:
    server = start_server(session_ttl=3)
    token, _ = await sign_in(server.url, "Short")
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        ticket = (
            await client.post("/api/tickets", headers={"Authorization": f"Bearer {token}"})
        ).json()["ticket"]
    async with websockets.connect(f"{server.ws_url}?ticket={ticket}") as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(15):
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert exp - 0.5 <= time.time() <= exp + 5  # at the session's exp, not the ticket's


async def test_sign_out_closes_the_persons_socket_and_refuses_the_token(
    shared_server: ServerProcess,
) -> None:
    token, user = await sign_in(shared_server.url, "Leaver")
    reader = await WsReader(shared_server.url, f"user:{user['id']}", token=token).start()
    async with httpx.AsyncClient(base_url=shared_server.url, timeout=10) as client:
        client.cookies.set("fourcast_session", token)
        out = await client.delete("/api/session", headers={"Origin": shared_server.url})
        assert out.status_code == 204
        await asyncio.wait_for(reader.ended.wait(), 2)
        assert reader.closed_code == 4401
        client.cookies.clear()
        refused = await client.get("/api/session", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "token_revoked"
        # Signing in again right away works.
        fresh, _ = await sign_in(shared_server.url, "Leaver")
        back = await client.get("/api/session", headers={"Authorization": f"Bearer {fresh}"})
        assert back.status_code == 200


async def test_a_service_revokes_a_persons_sessions(shared_server: ServerProcess) -> None:
    token, user = await sign_in(shared_server.url, "Closed")
    async with httpx.AsyncClient(base_url=shared_server.url, timeout=10) as client:
        stream_url = f"/api/channels/user:{user['id']}/stream"
        async with client.stream(
            "GET", stream_url, headers={"Authorization": f"Bearer {token}"}
        ) as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith(":")
            revoked = await client.delete(
                f"/api/people/{user['id']}/sessions", headers=shared_server.service_headers
            )
            assert revoked.status_code == 204

            async def ended() -> None:
                async for _ in lines:
                    pass

            await asyncio.wait_for(ended(), 5)
        refused = await client.get("/api/session", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401


async def test_display_names_are_normalised(shared_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=shared_server.url, timeout=10) as client:
        response = await client.post("/api/session", json={"name": "E\u0301ve\u202e\u200b  Smith"})
        assert response.json()["user"]["name"] == "\u00c9ve Smith"
        empty = await client.post("/api/session", json={"name": "\u200b\u202e"})
        assert empty.status_code == 422


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_two_cookie_headers_name_the_same_person_on_polls_as_everywhere(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch)
    alice, alice_user = await sign_in(server.url, "Alice")
    bob, _ = await sign_in(server.url, "Bob")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for cookies, user in (
            (["theme=dark", f"fourcast_session={alice}"], alice_user),
            ([f"fourcast_session={bob}", f"fourcast_session={alice}"], alice_user),
        ):
            headers = [("Cookie", value) for value in cookies]
            me = await client.get("/api/session", headers=headers)
            assert me.json()["user"]["id"] == user["id"], me.text
            # Twice: the second poll on a kept-alive connection is the quick lane's.
            for _ in range(2):
                poll = await client.get(f"/api/channels/user:{user['id']}/events", headers=headers)
                assert poll.status_code == 200, poll.text
