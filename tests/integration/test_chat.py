"""Chat over any transport: two people on different transports, for all 16 pairs."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.clients import TRANSPORTS, Reader, WsReader, eventually, make_reader, sign_in
from tests.fixtures.server import ServerProcess, Servers
from tests.integration.test_presence_holds import a_lease_has_passed

pytestmark = pytest.mark.asyncio(loop_scope="module")

LEASE = 1.0
TYPING_EXPIRY = 1.0


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:  # type: ignore[misc]
    servers = Servers(tmp_path_factory.mktemp("chat"))
    yield servers.start(  # type: ignore[misc]
        presence_lease=LEASE,
        typing_throttle=0.5,
        typing_expiry=TYPING_EXPIRY,
        # A burst no test here can exhaust: the history-pages test publishes 150 messages as fast
        # as it can, which a smaller burst would refuse on a quiet machine and allow on a busy one.
        publish_rate=100,
        publish_burst=1000,
        publish_address_rate=100,
        publish_address_burst=1000,
    )
    servers.stop_all()


class Person:
    """A signed-in person reading a room over one transport and writing to it."""

    def __init__(self, server: ServerProcess, name: str, transport: str) -> None:
        self.server = server
        self.name = name
        self.transport = transport
        self.token = ""
        self.id = ""
        self.reader: Reader | None = None

    async def sign_in(self) -> Person:
        self.token, user = await sign_in(self.server.url, self.name)
        self.id = user["id"]
        return self

    async def open(self, room: str) -> None:
        kwargs: dict[str, Any] = {"token": self.token}
        if self.transport == "shortpoll":
            kwargs["interval"] = 0.1
        self.reader = await make_reader(
            self.transport, self.server.url, f"room:{room}", **kwargs
        ).start()

    async def close(self) -> None:
        assert self.reader is not None
        await self.reader.stop()

    async def publish(self, room: str, event_type: str, data: Any) -> dict[str, Any]:
        if isinstance(self.reader, WsReader):
            reply = await self.reader.request(
                {"op": "publish", "channel": f"room:{room}", "type": event_type, "data": data}
            )
            assert reply["op"] == "ack", reply
            return reply
        async with httpx.AsyncClient(
            base_url=self.server.url, headers={"Authorization": f"Bearer {self.token}"}
        ) as client:
            response = await client.post(
                f"/api/channels/room:{room}/events", json={"type": event_type, "data": data}
            )
            assert response.status_code in (201, 202), response.text
            return response.json()  # type: ignore[no-any-return]

    def seen(self, event_type: str, **data: Any) -> list[dict[str, Any]]:
        assert self.reader is not None
        return [
            e
            for e in self.reader.events
            if e["type"] == event_type and all(e["data"].get(k) == v for k, v in data.items())
        ]

    async def wait_seen(self, event_type: str, timeout: float = 10, **data: Any) -> dict[str, Any]:
        async def found() -> dict[str, Any]:
            while True:
                matches = self.seen(event_type, **data)
                if matches:
                    return matches[0]
                await self.reader.wait_for(
                    len(self.reader.events) + 1, timeout=timeout, durable_only=False
                )  # type: ignore[union-attr]

        return await asyncio.wait_for(found(), timeout)


async def presence(server: ServerProcess, token: str, room: str) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        response = await client.get(f"/api/channels/room:{room}/presence")
        assert response.status_code == 200
        return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(("alice_on", "bob_on"), list(itertools.product(TRANSPORTS, TRANSPORTS)))
async def test_two_people_chat_on_any_pair_of_transports(
    chat_server: ServerProcess, alice_on: str, bob_on: str
) -> None:
    room = f"pair-{alice_on}-{bob_on}"
    alice = await Person(chat_server, "alice", alice_on).sign_in()
    bob = await Person(chat_server, "bob", bob_on).sign_in()
    await alice.open(room)
    await bob.open(room)

    # Presence: alice sees bob arrive.
    await alice.wait_seen("presence.join", user=bob.id)

    # Messages both ways.
    await alice.publish(room, "chat.message", {"text": f"hi bob from {alice_on}"})
    got = await bob.wait_seen("chat.message", text=f"hi bob from {alice_on}")
    assert got["from"] == f"user:{alice.id}" and got["data"]["name"] == "alice"
    await bob.publish(room, "chat.message", {"text": f"hi alice from {bob_on}"})
    await alice.wait_seen("chat.message", text=f"hi alice from {bob_on}")

    # Typing: shown live and in the presence state, then expired.
    await bob.publish(room, "typing", {})
    typing = await alice.wait_seen("typing", user=bob.id)
    assert typing["id"] is None
    state = await presence(chat_server, alice.token, room)
    assert [t["user"] for t in state["typing"]] == [bob.id]
    await eventually(lambda: _no_typing(chat_server, alice.token, room), timeout=TYPING_EXPIRY + 3)

    # Bob goes: alice sees him leave (at once on a stream, within the lease on a poll).
    await bob.close()
    await alice.wait_seen("presence.leave", user=bob.id, timeout=LEASE + 10)
    assert len(alice.seen("presence.join", user=bob.id)) == 1
    assert len(alice.seen("presence.leave", user=bob.id)) == 1
    members = (await presence(chat_server, alice.token, room))["members"]
    assert [m["user"] for m in members] == [alice.id]
    assert members[0]["transports"] == [alice_on]
    await alice.close()


async def _no_typing(server: ServerProcess, token: str, room: str) -> bool:
    return (await presence(server, token, room))["typing"] == []


async def test_two_tabs_on_two_transports_join_once_and_leave_after_the_last(
    chat_server: ServerProcess,
) -> None:
    room = "two-tabs"
    watcher = await Person(chat_server, "watcher", "websocket").sign_in()
    await watcher.open(room)
    dana = await Person(chat_server, "dana", "websocket").sign_in()
    await dana.open(room)
    second_tab = make_reader("sse", chat_server.url, f"room:{room}", token=dana.token)
    await second_tab.start()
    await watcher.wait_seen("presence.join", user=dana.id)
    state = await eventually(
        lambda: _member_transports(chat_server, watcher.token, room, dana.id, 2)
    )
    assert state == ["sse", "websocket"]
    await dana.close()
    await eventually(lambda: _member_transports(chat_server, watcher.token, room, dana.id, 1))
    assert watcher.seen("presence.leave", user=dana.id) == []
    await second_tab.stop()
    await watcher.wait_seen("presence.leave", user=dana.id)
    assert len(watcher.seen("presence.join", user=dana.id)) == 1
    await watcher.close()


async def _member_transports(
    server: ServerProcess, token: str, room: str, user: str, count: int
) -> list[str] | None:
    for member in (await presence(server, token, room))["members"]:
        if member["user"] == user and len(member["transports"]) == count:
            return member["transports"]  # type: ignore[no-any-return]
    return None


async def test_short_poller_stays_present_without_flapping_and_leaves_within_lease(
    chat_server: ServerProcess,
) -> None:
    """Lease periods are measured by another person's lapse, never by the clock: Carol polls
    once on a connection of her own, and when she has left, a lease has passed."""
    room = "lease"
    watcher = await Person(chat_server, "watcher", "websocket").sign_in()
    await watcher.open(room)
    poller = await Person(chat_server, "poller", "shortpoll").sign_in()
    poller.reader = await make_reader(
        "shortpoll", chat_server.url, f"room:{room}", token=poller.token, interval=LEASE / 3
    ).start()
    await watcher.wait_seen("presence.join", user=poller.id)
    # Several lease periods of normal polling: never a leave, never a second join.
    for _ in range(3):
        await a_lease_has_passed(chat_server, watcher.token)
    assert poller.reader.requests >= 2  # type: ignore[attr-defined]
    assert len(watcher.seen("presence.join", user=poller.id)) == 1
    assert watcher.seen("presence.leave", user=poller.id) == []
    # Stops, and leaves within its lease: before Carol, whose lease starts after it stopped.
    await poller.close()
    await a_lease_has_passed(chat_server, watcher.token)
    state = await presence(chat_server, watcher.token, room)
    assert poller.id not in [m["user"] for m in state["members"]]
    await watcher.wait_seen("presence.leave", user=poller.id, timeout=LEASE + 10)
    assert len(watcher.seen("presence.leave", user=poller.id)) == 1
    await watcher.close()


async def test_markup_in_a_message_is_stored_and_delivered_unchanged(
    chat_server: ServerProcess,
) -> None:
    room = "xss"
    text = "<img src=x onerror=alert(1)>"
    alice = await Person(chat_server, "alice", "sse").sign_in()
    await alice.open(room)
    await alice.publish(room, "chat.message", {"text": text})
    live = await alice.wait_seen("chat.message")
    assert live["data"]["text"] == text
    async with httpx.AsyncClient(
        base_url=chat_server.url, headers={"Authorization": f"Bearer {alice.token}"}
    ) as client:
        history = (await client.get(f"/api/rooms/{room}/messages")).json()
    assert [m["data"]["text"] for m in history["messages"]] == [text]
    await alice.close()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"text": ""}, "invalid_message"),
        ({"text": "   "}, "invalid_message"),
        ({"text": "x" * 4001}, "invalid_message"),
        ({"text": "bell\x07"}, "invalid_message"),
        ({"text": 5}, "invalid_message"),
        ("just a string", "invalid_message"),
    ],
)
async def test_invalid_chat_messages_are_refused(
    chat_server: ServerProcess, data: Any, code: str
) -> None:
    token, _ = await sign_in(chat_server.url, "eve")
    async with httpx.AsyncClient(
        base_url=chat_server.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        response = await client.post(
            "/api/channels/room:rules/events", json={"type": "chat.message", "data": data}
        )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code


async def test_message_text_is_trimmed_and_4000_characters_allowed(
    chat_server: ServerProcess,
) -> None:
    token, _ = await sign_in(chat_server.url, "eve")
    async with httpx.AsyncClient(
        base_url=chat_server.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        response = await client.post(
            "/api/channels/room:rules/events",
            json={"type": "chat.message", "data": {"text": "  " + "y" * 4000 + " "}},
        )
    assert response.status_code == 201
    assert response.json()["data"]["text"] == "y" * 4000


async def test_people_cannot_forge_presence_events(chat_server: ServerProcess) -> None:
    token, _ = await sign_in(chat_server.url, "eve")
    async with httpx.AsyncClient(
        base_url=chat_server.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        response = await client.post(
            "/api/channels/room:rules/events",
            json={"type": "presence.leave", "data": {"user": "x"}},
        )
    assert response.status_code == 403


async def test_rooms_join_leave_members_and_history_pages(chat_server: ServerProcess) -> None:
    token, user = await sign_in(chat_server.url, "frank")
    async with httpx.AsyncClient(
        base_url=chat_server.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        created = await client.post("/api/rooms", json={"name": "library"})
        assert created.status_code == 201 and created.json()["name"] == "library"
        assert (await client.post("/api/rooms", json={"name": "library"})).status_code == 200
        assert (await client.post("/api/rooms", json={"name": "bad name!"})).status_code == 422
        assert (await client.post("/api/rooms/library/join")).json()["joined"] is True
        members = (await client.get("/api/rooms/library/members")).json()["members"]
        assert [(m["user"], m["name"]) for m in members] == [(user["id"], "frank")]
        rooms = {r["name"]: r for r in (await client.get("/api/rooms")).json()["rooms"]}
        assert rooms["library"]["members"] == 1
        for n in range(150):
            response = await client.post(
                "/api/channels/room:library/events",
                json={"type": "chat.message", "data": {"text": f"m{n}"}},
            )
            assert response.status_code == 201, response.text
        first = (await client.get("/api/rooms/library/messages")).json()
        assert [m["data"]["text"] for m in first["messages"]] == [f"m{n}" for n in range(50, 150)]
        older = (
            await client.get("/api/rooms/library/messages", params={"before": first["before"]})
        ).json()
        assert [m["data"]["text"] for m in older["messages"]] == [f"m{n}" for n in range(50)]
        assert older["before"] is None
        assert (await client.post("/api/rooms/library/leave")).json()["left"] is True
        assert (await client.get("/api/rooms/library/members")).json()["members"] == []


async def test_people_are_rate_limited_with_retry_after(start_server) -> None:  # type: ignore[no-untyped-def]
    # A token back every 100 s: nothing refills between the REST publishes and the socket's,
    # however slow the machine (a refill there would make the last one an ack).
    server = start_server(publish_rate=0.01, publish_burst=5)
    token, _ = await sign_in(server.url, "spammer")
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        statuses = []
        for n in range(8):
            response = await client.post(
                "/api/channels/room:spam/events",
                json={"type": "chat.message", "data": {"text": str(n)}},
            )
            statuses.append(response.status_code)
        assert statuses == [201] * 5 + [429] * 3
        limited = next(r for r in [response] if r.status_code == 429)
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["error"]["code"] == "rate_limited"
    ws = await WsReader(server.url, "room:spam", token=token).start()
    reply = await ws.request(
        {"op": "publish", "channel": "room:spam", "type": "chat.message", "data": {"text": "more"}}
    )
    assert reply["op"] == "error" and reply["code"] == "rate_limited" and reply["retry_after"] > 0
    await ws.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def carol(chat_server: ServerProcess) -> AsyncIterator[tuple[str, str]]:
    token, user = await sign_in(chat_server.url, "carol")
    yield token, user["id"]


async def test_notifications_reach_every_client_and_the_offline_one_catches_up(
    chat_server: ServerProcess, carol: tuple[str, str]
) -> None:
    token, user_id = carol
    channel = f"user:{user_id}"
    ws = await make_reader("websocket", chat_server.url, channel, token=token).start()
    sse = await make_reader("sse", chat_server.url, channel, token=token).start()
    longpoll = await make_reader("longpoll", chat_server.url, channel, token=token).start()
    async with httpx.AsyncClient(
        base_url=chat_server.url, headers=chat_server.service_headers
    ) as service:

        async def notify(n: int) -> dict[str, Any]:
            response = await service.post(
                "/api/notifications",
                json={"user": user_id, "title": f"n{n}", "body": "b", "url": "/chat/lobby"},
            )
            assert response.status_code == 201, response.text
            return response.json()  # type: ignore[no-any-return]

        sent = [await notify(1)]
        for reader in (ws, sse, longpoll):
            await reader.wait_for(1)
        await sse.stop()  # offline for a while
        cursor = sse.cursor
        sent += [await notify(n) for n in (2, 3, 4)]
        back = await make_reader("sse", chat_server.url, channel, token=token, after=cursor).start()
        for reader in (ws, longpoll, back):
            await reader.wait_for(3 if reader is back else 4)
    titles = [e["data"]["title"] for e in back.durable]
    assert titles == ["n2", "n3", "n4"]
    for reader in (ws, longpoll):
        assert [e["data"]["title"] for e in reader.durable] == ["n1", "n2", "n3", "n4"]
        assert [e["data"]["id"] for e in reader.durable] == [n["id"] for n in sent]
    async with httpx.AsyncClient(
        base_url=chat_server.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        mine = (await client.get("/api/notifications", params={"unread": "true"})).json()
        assert mine["unread"] == 4 and len(mine["notifications"]) == 4
        marked = await client.post(f"/api/notifications/{sent[0]['id']}/read")
        assert marked.json() == {"unread": 3}
        # Every client hears the new count.
        for reader in (ws, longpoll, back):
            await reader.wait_for(5 if reader is not back else 4)
            assert reader.durable[-1]["type"] == "notification.read"
            assert reader.durable[-1]["data"]["unread"] == 3
        assert (await client.get("/api/notifications", params={"unread": "true"})).json()[
            "unread"
        ] == 3
        assert (await client.post("/api/notifications/nope/read")).status_code == 404
    for reader in (ws, longpoll, back):
        await reader.stop()


async def test_notifications_refuse_bad_input_and_people(
    chat_server: ServerProcess, carol: tuple[str, str]
) -> None:
    token, user_id = carol
    async with httpx.AsyncClient(base_url=chat_server.url) as client:
        as_person = await client.post(
            "/api/notifications",
            json={"user": user_id, "title": "t"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert as_person.status_code == 403
        bad_url = await client.post(
            "/api/notifications",
            json={"user": user_id, "title": "t", "url": "javascript:alert(1)"},
            headers=chat_server.service_headers,
        )
        assert bad_url.status_code == 422
        # A browser drops tabs and newlines from a URL: `/<tab>/host` is `//host` to it.
        for other_site in (
            "//evil.example/x",
            "/\\evil.example/x",
            "/\t/evil.example/x",
            "/\n/evil.example/x",
            "/\r\\evil.example/x",
        ):
            offsite = await client.post(
                "/api/notifications",
                json={"user": user_id, "title": "t", "url": other_site},
                headers=chat_server.service_headers,
            )
            assert offsite.status_code == 422, other_site  # not a path on this site
        unknown = await client.post(
            "/api/notifications",
            json={"user": "nobody", "title": "t"},
            headers=chat_server.service_headers,
        )
        assert unknown.status_code == 404
        other = await client.get(
            f"/api/channels/user:{user_id}/events",
            headers={"Authorization": f"Bearer {(await sign_in(chat_server.url, 'snoop'))[0]}"},
        )
        assert other.status_code == 403
        nul = {"user": user_id, "title": "t"}
        for field, value in [
            ("user", "a\x00b"),
            ("title", "a\x00b"),
            ("body", "\x00"),
            ("url", "/\x00"),
        ]:
            refused = await client.post(
                "/api/notifications",
                json={**nul, field: value},
                headers=chat_server.service_headers,
            )
            assert refused.status_code == 422, (field, refused.text)  # PostgreSQL holds no NUL
        assert (
            await client.post(
                "/api/notifications/no%00such/read", headers={"Authorization": f"Bearer {token}"}
            )
        ).status_code == 404


async def test_marking_read_again_writes_no_event(chat_server: ServerProcess) -> None:
    """Each `notification.read` event is kept: only a change is told, so a person marking what
    is read already (in a loop, say) adds nothing to their channel."""
    token, user = await sign_in(chat_server.url, "marker")
    person = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=chat_server.url, timeout=10) as client:

        async def notify() -> str:
            sent = await client.post(
                "/api/notifications",
                json={"user": user["id"], "title": "t"},
                headers=chat_server.service_headers,
            )
            assert sent.status_code == 201, sent.text
            return str(sent.json()["id"])

        first = await notify()
        assert (await client.post(f"/api/notifications/{first}/read", headers=person)).json() == {
            "unread": 0
        }
        for _ in range(3):
            again = await client.post(f"/api/notifications/{first}/read", headers=person)
            assert again.json() == {"unread": 0}
            everything = await client.post("/api/notifications/read-all", headers=person)
            assert everything.json() == {"unread": 0}
        await notify()
        assert (await client.post("/api/notifications/read-all", headers=person)).json() == {
            "unread": 0
        }
        events = await client.get(
            f"/api/channels/user:{user['id']}/events", params={"after": "0"}, headers=person
        )
    types = [event["type"] for event in events.json()["events"]]
    assert types == ["notification", "notification.read", "notification", "notification.read"]


async def test_the_room_list_pages_on_rather_than_stopping(chat_server: ServerProcess) -> None:
    """Rooms are never deleted and anyone signed in may make some: a list cut at a fixed count
    would let a flood of early-sorting names hide every other room, so it is paged."""
    token, _ = await sign_in(chat_server.url, "pager")
    mine = [f"pg-{n}" for n in range(5)]
    async with httpx.AsyncClient(
        base_url=chat_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        for name in mine:
            assert (await client.post("/api/rooms", json={"name": name})).status_code == 201
        everything = (await client.get("/api/rooms", params={"limit": 1000})).json()
        assert everything["next"] is None
        names, after = [], None
        while True:
            params = {"limit": 2} if after is None else {"limit": 2, "after": after}
            page = (await client.get("/api/rooms", params=params)).json()
            assert len(page["rooms"]) <= 2
            names += [room["name"] for room in page["rooms"]]
            after = page["next"]
            if after is None:
                break
        assert names == [room["name"] for room in everything["rooms"]] == sorted(names)
        assert set(mine) <= set(names)
        for bad in ({"limit": "0"}, {"limit": "1001"}, {"after": "no such!"}):
            assert (await client.get("/api/rooms", params=bad)).status_code == 400, bad
