"""Queries for what features keep beside the event log: people, rooms, memberships (a person's
notifications: app/store/notifications.py).

Each repository wraps a session the caller owns: repositories flush but never commit, so a service
can make several changes in one transaction. Nothing here knows about HTTP.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Integer, Result, delete, func, or_, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from ..bus.events import Event, now_ms
from .db import dialect_insert, dialect_name
from .journal import events_table, row_to_event, select_events
from .models import IS_CHAT_MESSAGE, Membership, Revocation, Room, User

DEFAULT_HISTORY_LIMIT = 100


def new_id() -> str:
    """A random id that is also valid inside a channel name (`user:<id>`)."""
    return secrets.token_hex(8)


def is_notification_id(value: str) -> bool:
    """Whether `value` may be an id `new_id` made (16 lower-case hex digits)."""
    return len(value) == 16 and all(ch in "0123456789abcdef" for ch in value)


def room_channel(room: str) -> str:
    return f"room:{room}"


def _insert_ignoring_duplicates(session: AsyncSession, table: Any) -> Any:
    return dialect_insert(session, table).on_conflict_do_nothing()


def rowcount(result: Result[Any]) -> int:
    """Rows changed by a DML statement (its result is a cursor result; `execute` is typed loosely)."""
    return cast("CursorResult[Any]", result).rowcount


class Users:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_guest(self, name: str, created_at: float | None = None) -> User:
        """A new person with a generated id; names need not be unique (guests choose them)."""
        user = User(
            id=new_id(), name=name, created_at=now_ms() if created_at is None else created_at
        )
        self.session.add(user)
        await self.session.flush()
        return user

    async def made_since(
        self, since_ms: float, width_ms: float, held_since: float | None = None
    ) -> dict[int, int]:
        """Rows made since `since_ms`, per `created_at // width_ms`: guests' sign-ups, and
        application people's first requests (counted alike: a guest cannot be told apart); but
        for people revoked since `held_since` (epoch seconds), counted as revocations held."""
        scaled = User.created_at / width_ms
        sqlite = dialect_name(self.session) == "sqlite"  # its floor() may not be built in
        bucket = sql_cast(scaled, Integer) if sqlite else func.floor(scaled)
        made = select(bucket, func.count()).where(User.created_at >= since_ms)
        if held_since is not None:
            held = select(Revocation.user_id).where(
                Revocation.user_id == User.id, Revocation.revoked_at >= held_since
            )
            made = made.where(~held.exists())
        rows = await self.session.execute(made.group_by(bucket))
        return {int(b): int(n) for b, n in rows}

    async def get(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id)

    async def ensure(self, user_id: str, name: str) -> None:
        """The person's row, made unless it exists (also when a concurrent request makes it).
        A row made for them before they came (`ensure_addressable`) gets their name now."""
        upsert = dialect_insert(self.session, User.__table__).values(
            id=user_id, name=name, created_at=now_ms()
        )
        await self.session.execute(
            upsert.on_conflict_do_update(
                index_elements=[User.id],
                set_={"name": upsert.excluded.name},
                where=User.name == User.id,
            )
        )

    async def ensure_addressable(self, user_id: str) -> None:
        """A row for a person who may not have come yet (an application's token names anyone),
        so things can be kept for them; named by their id until they come."""
        await self.session.execute(
            _insert_ignoring_duplicates(self.session, User.__table__).values(
                id=user_id, name=user_id, created_at=now_ms()
            )
        )

    async def get_many(self, user_ids: Iterable[str]) -> dict[str, User]:
        """Look up several people in one query (presence lists, member lists)."""
        ids = set(user_ids)
        if not ids:
            return {}
        users = await self.session.scalars(select(User).where(User.id.in_(ids)))
        return {user.id: user for user in users}


@dataclass(frozen=True, slots=True)
class RoomSummary:
    name: str
    created_by: str
    created_at: float
    members: int


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    name: str
    joined_at: float


class Rooms:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_rooms(self, after: str | None = None, limit: int = 1000) -> list[RoomSummary]:
        """Rooms by name (those after `after`), each with its member count."""
        members = func.count(Membership.user_id)
        query = select(Room.name, Room.created_by, Room.created_at, members)
        if after is not None:
            query = query.where(Room.name > after)
        rows = await self.session.execute(
            query.outerjoin(Membership, Membership.room == Room.name)
            .group_by(Room.name, Room.created_by, Room.created_at)
            .order_by(Room.name)
            .limit(limit)
        )
        return [RoomSummary(*row) for row in rows]

    async def get(self, name: str) -> Room | None:
        return await self.session.get(Room, name)

    async def create(self, name: str, created_by: str) -> Room | None:
        """Create a room; None when the name is taken (also by a concurrent creator)."""
        inserted = await self.session.execute(
            _insert_ignoring_duplicates(self.session, Room.__table__).values(
                name=name, created_by=created_by, created_at=now_ms()
            )
        )
        if rowcount(inserted) != 1:
            return None
        return await self.get(name)

    async def ensure(self, name: str, created_by: str) -> Room:
        """The room, created first if it does not exist yet."""
        room = await self.create(name, created_by)
        if room is None:
            room = await self.get(name)
        if room is None:  # deleted between the two statements: not reachable without deletes
            raise LookupError(f"room {name!r} vanished while being created")
        return room

    async def history(
        self, name: str, before: int | None = None, limit: int = DEFAULT_HISTORY_LIMIT
    ) -> list[Event]:
        """Chat messages of a room older than cursor `before` (None: the newest), oldest first."""
        if limit <= 0:
            return []
        query = select_events().where(events_table.c.channel == room_channel(name), IS_CHAT_MESSAGE)
        if before is not None:
            query = query.where(events_table.c.seq < before)
        rows = (
            await self.session.execute(query.order_by(events_table.c.seq.desc()).limit(limit))
        ).all()
        return [row_to_event(row) for row in reversed(rows)]


class Memberships:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def join(self, room: str, user_id: str) -> bool:
        """Add a person to an existing room; False when they were in it already."""
        inserted = await self.session.execute(
            _insert_ignoring_duplicates(self.session, Membership.__table__).values(
                room=room, user_id=user_id, joined_at=now_ms()
            )
        )
        return rowcount(inserted) == 1

    async def leave(self, room: str, user_id: str) -> bool:
        """Remove a person from a room; False when they were not in it."""
        deleted = await self.session.execute(
            delete(Membership).where(Membership.room == room, Membership.user_id == user_id)
        )
        return rowcount(deleted) == 1

    async def is_member(self, room: str, user_id: str) -> bool:
        found = await self.session.scalar(
            select(Membership.user_id).where(Membership.room == room, Membership.user_id == user_id)
        )
        return found is not None

    async def members(
        self, room: str, after: tuple[float, str] | None = None, limit: int = 1000
    ) -> list[Member]:
        """A room's members with their names, in the order they joined (then by id), from
        after `after` (the previous page's last: joined_at, user_id). A range of the room's
        index; people who join meanwhile sort last, so a walk lists each member once."""
        query = (
            select(Membership.user_id, User.name, Membership.joined_at)
            .join(User, User.id == Membership.user_id)
            .where(Membership.room == room)
        )
        if after is not None:
            joined_at, user_id = after
            query = query.where(
                Membership.joined_at >= joined_at,
                or_(Membership.joined_at > joined_at, Membership.user_id > user_id),
            )
        rows = await self.session.execute(
            query.order_by(Membership.joined_at, Membership.user_id).limit(limit)
        )
        return [Member(*row) for row in rows]

    async def rooms_of(self, user_id: str) -> list[str]:
        """Names of the rooms a person has joined."""
        names = await self.session.scalars(
            select(Membership.room).where(Membership.user_id == user_id).order_by(Membership.room)
        )
        return list(names)
