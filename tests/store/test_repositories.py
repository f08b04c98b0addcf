"""Repositories: people, rooms, memberships, notifications and room history, on both databases."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.bus.events import Event, now_ms
from app.store.db import create_session_factory
from app.store.journal import SqlJournal, events_table, select_events
from app.store.models import IS_CHAT_MESSAGE, Membership, Revocation, User
from app.store.notifications import Notifications
from app.store.repositories import Memberships, Rooms, Users, room_channel


async def test_guest_users(session: AsyncSession) -> None:
    users = Users(session)
    alice = await users.create_guest("alice")
    other_alice = await users.create_guest("alice")
    await session.commit()

    assert alice.id != other_alice.id
    assert alice.created_at > 0
    fetched = await users.get(alice.id)
    assert fetched is not None and fetched.name == "alice"
    assert await users.get("nobody") is None
    assert set(await users.get_many([alice.id, other_alice.id, "nobody"])) == {
        alice.id,
        other_alice.id,
    }
    assert await users.get_many([]) == {}


async def test_people_made_since_are_counted_per_bucket(session: AsyncSession) -> None:
    """What a starting node counts as guests who may still sign out (app/identity/guestroom.py):
    floored on both databases (PostgreSQL's cast would round)."""
    users = Users(session)
    for at in (1_000.0, 9_900.0, 10_000.0, 25_500.0):
        session.add(User(id=f"p{int(at)}", name="p", created_at=at))
    await session.flush()
    assert await users.made_since(5_000, 10_000) == {0: 1, 1: 1, 2: 1}
    assert await users.made_since(0, 10_000) == {0: 2, 1: 1, 2: 1}
    # People held signed out are counted as their revocation, not again as sign-ups.
    session.add_all(
        [Revocation(user_id="p9900", revoked_at=30.0), Revocation(user_id="p1000", revoked_at=2.0)]
    )
    await session.flush()
    assert await users.made_since(0, 10_000, held_since=20.0) == {0: 1, 1: 1, 2: 1}


async def test_users_persist_across_sessions(engine: AsyncEngine) -> None:
    sessions = create_session_factory(engine)
    async with sessions() as session:
        user = await Users(session).create_guest("bob")
        await session.commit()
    async with sessions() as session:
        fetched = await Users(session).get(user.id)
        assert fetched is not None and fetched.name == "bob"


async def test_a_row_made_before_a_person_came_takes_their_name_once(
    session: AsyncSession,
) -> None:
    users = Users(session)
    await users.ensure_addressable("ext-1")  # a notification for someone not come yet
    await users.ensure_addressable("ext-1")
    await users.ensure("ext-1", "Ext One")  # they come: their token names them
    await users.ensure("ext-1", "Another Name")  # a name once given is kept, as before
    await users.ensure("ext-2", "Ext Two")
    await users.ensure_addressable("ext-2")
    await session.commit()
    session.expire_all()
    found = await users.get_many(["ext-1", "ext-2"])
    assert {u.id: u.name for u in found.values()} == {"ext-1": "Ext One", "ext-2": "Ext Two"}


async def test_rooms_create_get_and_list_with_member_counts(session: AsyncSession) -> None:
    users, rooms, memberships = Users(session), Rooms(session), Memberships(session)
    alice, bob = await users.create_guest("alice"), await users.create_guest("bob")

    lobby = await rooms.create("lobby", f"user:{alice.id}")
    assert lobby is not None and lobby.created_by == f"user:{alice.id}"
    assert await rooms.create("lobby", f"user:{bob.id}") is None, "names are unique"
    await rooms.create("empty", "service:ops")
    await memberships.join("lobby", alice.id)
    await memberships.join("lobby", bob.id)
    await session.commit()

    summaries = await rooms.list_rooms()
    assert [(r.name, r.members) for r in summaries] == [("empty", 0), ("lobby", 2)]
    fetched = await rooms.get("lobby")
    assert fetched is not None and fetched.created_by == f"user:{alice.id}"
    assert await rooms.get("missing") is None
    assert len(await rooms.list_rooms(limit=1)) == 1


async def test_ensure_room_creates_once(session: AsyncSession) -> None:
    rooms = Rooms(session)
    first = await rooms.ensure("general", "service:seed")
    again = await rooms.ensure("general", "user:someone")
    assert first.name == again.name == "general"
    assert again.created_by == "service:seed"


async def test_memberships_join_leave_and_list(session: AsyncSession) -> None:
    users, rooms, memberships = Users(session), Rooms(session), Memberships(session)
    alice, bob = await users.create_guest("alice"), await users.create_guest("bob")
    await rooms.create("lobby", "service:seed")
    await rooms.create("dev", "service:seed")

    assert await memberships.join("lobby", alice.id) is True
    assert await memberships.join("lobby", alice.id) is False, "joining twice is harmless"
    assert await memberships.join("lobby", bob.id) is True
    assert await memberships.join("dev", alice.id) is True

    members = await memberships.members("lobby")
    assert [(m.user_id, m.name) for m in members] == [(alice.id, "alice"), (bob.id, "bob")]
    assert await memberships.is_member("lobby", bob.id)
    assert await memberships.rooms_of(alice.id) == ["dev", "lobby"]

    assert await memberships.leave("lobby", bob.id) is True
    assert await memberships.leave("lobby", bob.id) is False
    assert not await memberships.is_member("lobby", bob.id)
    assert [m.user_id for m in await memberships.members("lobby")] == [alice.id]
    await session.commit()


async def test_member_pages_go_on_after_the_last_member_through_ties(
    session: AsyncSession,
) -> None:
    """Pages of members in the order they joined, then by id (people who joined in the same
    millisecond): each page goes on after the previous page's last, on both databases."""
    await Rooms(session).create("hall", "service:seed")
    ids = [f"p{n}" for n in range(7)] + ["P9", "a-b", "a_b", "é"]
    for user_id in ids:
        await Users(session).ensure(user_id, user_id.upper())
    await _add_memberships(session, "hall", ids)
    members = Memberships(session)
    whole = [(m.joined_at, m.user_id) for m in await members.members("hall")]
    assert sorted(whole) == whole and sorted(i for _, i in whole) == sorted(ids)
    walked: list[tuple[float, str]] = []
    for _ in range(len(ids)):
        after = walked[-1] if walked else None
        page = await members.members("hall", after, 3)
        walked += [(m.joined_at, m.user_id) for m in page]
        if len(page) < 3:
            break
    assert walked == whole
    await session.commit()


async def _add_memberships(session: AsyncSession, room: str, ids: list[str]) -> None:
    """Memberships two to a millisecond (what a crowd joining at once makes)."""
    for n, user_id in enumerate(ids):
        session.add(Membership(room=room, user_id=user_id, joined_at=1_000.5 + n // 2))
    await session.flush()


async def test_joining_an_unknown_room_is_refused(session: AsyncSession) -> None:
    alice = await Users(session).create_guest("alice")
    with pytest.raises(IntegrityError):
        await Memberships(session).join("no-such-room", alice.id)
    await session.rollback()


async def test_notifications_lifecycle(session: AsyncSession) -> None:
    users, notifications = Users(session), Notifications(session)
    alice, bob = await users.create_guest("alice"), await users.create_guest("bob")

    first = await notifications.create(alice.id, "Welcome", "Hello there")
    second = await notifications.create(
        alice.id, "Mention", "bob mentioned you", "/rooms/lobby", event_channel="user:x"
    )
    await notifications.create(bob.id, "Bob's", "not alice's")
    await notifications.set_event(first.id, f"user:{alice.id}", 7)
    await session.commit()

    listed = await notifications.list_for_user(alice.id)
    assert {n.id for n in listed} == {first.id, second.id}
    assert listed[0].created_at >= listed[1].created_at, "newest first"
    assert second.url == "/rooms/lobby" and first.url is None
    stored = await notifications.get(first.id)
    assert stored is not None
    assert (stored.event_channel, stored.event_seq) == (f"user:{alice.id}", 7)
    assert await notifications.unread_count(alice.id) == 2

    assert await notifications.mark_read(bob.id, first.id, "k1") is None, "only the owner's"
    assert await notifications.mark_read(alice.id, "unknown", "k2") is None
    assert await notifications.mark_read(alice.id, first.id, "k3") is True
    assert await notifications.mark_read(alice.id, first.id, "k4") is False, (
        "read already: no change"
    )
    await session.commit()

    assert await notifications.unread_count(alice.id) == 1
    unread = await notifications.list_for_user(alice.id, unread_only=True)
    assert [n.id for n in unread] == [second.id]
    read = await notifications.get(first.id)
    assert read is not None and read.read_at is not None

    loaded = await notifications.list_for_user(alice.id, unread_only=True)
    assert await notifications.mark_all_read(alice.id, "k5") == 1
    assert await notifications.mark_all_read(alice.id, "k6") == 0
    assert all(n.read_at is not None for n in loaded), "loaded objects are updated in place"
    await session.commit()
    assert await notifications.unread_count(alice.id) == 0
    assert await notifications.unread_count(bob.id) == 1
    assert len(await notifications.list_for_user(alice.id, limit=1)) == 1


async def test_mark_read_keeps_the_first_read_time(session: AsyncSession) -> None:
    alice = await Users(session).create_guest("alice")
    notifications = Notifications(session)
    note = await notifications.create(alice.id, "t", "b")
    await notifications.mark_read(alice.id, note.id, "k1")
    first_read = (await notifications.get(note.id)).read_at  # type: ignore[union-attr]
    await notifications.mark_read(alice.id, note.id, "k2")
    assert (await notifications.get(note.id)).read_at == first_read  # type: ignore[union-attr]


async def test_unmark_takes_back_only_the_marks_made_under_that_key(
    session: AsyncSession,
) -> None:
    alice = await Users(session).create_guest("alice")
    notifications = Notifications(session)
    earlier, later, other = [await notifications.create(alice.id, t, "") for t in "abc"]
    assert await notifications.mark_read(alice.id, earlier.id, "one", 1000.5) is True
    assert await notifications.mark_all_read(alice.id, "all", 2000.25) == 2
    await session.commit()
    assert await notifications.untold_reads(3000, 10) == [("one", alice.id), ("all", alice.id)]
    await notifications.told("one")
    await notifications.unmark("all")
    await session.commit()
    unread = {n.id for n in await notifications.list_for_user(alice.id, unread_only=True)}
    assert unread == {later.id, other.id}, "the mark made under another key stays"
    assert await notifications.untold_reads(3000, 10) == []


def chat(room: str, seq: int, text: str, type_: str = "chat.message") -> Event:
    return Event(f"room:{room}", type_, orjson.dumps({"text": text}), now_ms(), "user:u1", seq)


async def test_room_history_pages_through_chat_messages(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    journal = SqlJournal(engine)
    events = [
        chat("lobby", seq, f"m{seq}", "presence.join" if seq % 5 == 0 else "chat.message")
        for seq in range(1, 251)
    ]
    await journal.append(events)
    await journal.append([chat("other", 1, "elsewhere")])
    rooms = Rooms(session)
    expected = [e.seq for e in events if e.type == "chat.message"]

    newest = await rooms.history("lobby")
    assert [e.seq for e in newest] == expected[-100:], "newest last, 100 by default"
    assert all(e.type == "chat.message" and e.channel == "room:lobby" for e in newest)

    older = await rooms.history("lobby", before=newest[0].seq, limit=30)
    assert [e.seq for e in older] == expected[-130:-100]

    pages, before = [], None
    while page := await rooms.history("lobby", before=before, limit=64):
        pages.insert(0, page)
        before = page[0].seq
    assert [e.seq for page in pages for e in page] == expected
    assert newest[-1].json == events[-2].json, "rebuilt events match what was published"

    assert await rooms.history("lobby", before=1) == []
    assert await rooms.history("nowhere") == []
    assert await rooms.history("lobby", limit=0) == []


async def test_history_query_uses_the_chat_message_index(engine: AsyncEngine) -> None:
    """Room history must not wade through presence and other events: the partial index serves it."""
    query = (
        select_events()
        .where(events_table.c.channel == room_channel("lobby"), IS_CHAT_MESSAGE)
        .where(events_table.c.seq < 100)
        .order_by(events_table.c.seq.desc())
        .limit(100)
    )
    sql = query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # The table is empty, so a sequential scan would win on cost: ask about the index.
            await conn.exec_driver_sql("SET enable_seqscan = off")
        rows = await conn.exec_driver_sql(
            f"EXPLAIN {'QUERY PLAN ' if engine.dialect.name == 'sqlite' else ''}{sql}"
        )
        plan = " ".join(str(row[-1]) for row in rows)
    assert "ix_events_chat_messages" in plan, plan
