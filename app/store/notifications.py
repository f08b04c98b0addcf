"""Queries for a person's notifications: kept, attached to the event that delivered them, read.

Like every repository (app/store/repositories.py), it flushes but never commits: the caller owns the
transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..bus.events import now_ms
from .db import dialect_insert
from .models import Notification
from .repositories import new_id, rowcount


class Notifications:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        user_id: str,
        title: str,
        body: str,
        url: str | None = None,
        *,
        event_channel: str | None = None,
        event_seq: int | None = None,
        notification_id: str | None = None,
        publish_key: str | None = None,
    ) -> Notification:
        """Keep a notification for a person; its delivering event can be attached later, and
        `publish_key` is the key that event is published under until then."""
        notification = Notification(
            id=notification_id or new_id(),
            user_id=user_id,
            title=title,
            body=body,
            url=url,
            created_at=now_ms(),
            read_at=None,
            event_channel=event_channel,
            event_seq=event_seq,
            publish_key=publish_key,
        )
        self.session.add(notification)
        await self.session.flush()
        return notification

    async def set_event(self, notification_id: str, channel: str, seq: int) -> None:
        """Record the event that delivered a notification (known only once it is published):
        it is sent, and no longer published again as a server starts."""
        await self.session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(event_channel=channel, event_seq=seq, publish_key=None)
        )

    async def unsent(self, before: float, limit: int) -> list[Notification]:
        """Notifications created before `before` whose event was never attached, oldest first:
        one read of a partial index that holds only those."""
        query = (
            select(Notification)
            .where(Notification.publish_key.is_not(None), Notification.created_at < before)
            .order_by(Notification.created_at, Notification.id)
            .limit(limit)
        )
        return list(await self.session.scalars(query))

    async def restore(self, told: dict[str, Any], channel: str, seq: int) -> None:
        """Keep again the notification an event told of (`notification_json`), if it is gone:
        its send was answered 503 and took it back, but the event had been kept all the same."""
        row = {name: told[name] for name in ("id", "title", "body", "url", "created_at")}
        await self.session.execute(
            dialect_insert(self.session, Notification)
            .values(**row, user_id=told["user"], read_at=None)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        await self.set_event(told["id"], channel, seq)

    async def get(self, notification_id: str) -> Notification | None:
        return await self.session.get(Notification, notification_id)

    async def delete(self, notification_id: str) -> None:
        """Take back a notification whose delivering event could not be kept."""
        await self.session.execute(delete(Notification).where(Notification.id == notification_id))

    async def list_for_user(
        self, user_id: str, *, unread_only: bool = False, limit: int = 50
    ) -> list[Notification]:
        """A person's notifications, newest first."""
        query = select(Notification).where(Notification.user_id == user_id)
        if unread_only:
            query = query.where(Notification.read_at.is_(None))
        query = query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
        return list(await self.session.scalars(query))

    async def unread_count(self, user_id: str) -> int:
        count = await self.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        return int(count or 0)

    async def mark_read(
        self, user_id: str, notification_id: str, read_key: str, at: float | None = None
    ) -> bool | None:
        """Mark one of this person's notifications read (at `at`, default now), keeping
        `read_key` until its event is kept (`told`): True when it is now, False when it was read
        already (the first read time is kept), None when it is not theirs or unknown."""
        # Plain values (no SQL expressions) let the ORM update loaded objects in place rather
        # than expire them, which would force a lazy load that async sessions cannot do.
        updated = await self.session.execute(
            update(Notification)
            .where(
                Notification.id == notification_id,
                Notification.user_id == user_id,
                Notification.read_at.is_(None),
            )
            .values(read_key=read_key, read_at=now_ms() if at is None else at)
        )
        if rowcount(updated) == 1:
            return True
        owned = await self.session.scalar(
            select(Notification.id).where(
                Notification.id == notification_id, Notification.user_id == user_id
            )
        )
        return False if owned is not None else None

    async def mark_all_read(self, user_id: str, read_key: str, at: float | None = None) -> int:
        """Mark every unread notification of a person read (at `at`, default now), under one
        `read_key` kept until its event is kept; returns how many changed."""
        updated = await self.session.execute(
            update(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
            .values(read_key=read_key, read_at=now_ms() if at is None else at)
        )
        return rowcount(updated)

    async def told(self, read_key: str) -> None:
        """The event of the read marks made under `read_key` is kept: no start tells it again."""
        await self.session.execute(
            update(Notification).where(Notification.read_key == read_key).values(read_key=None)
        )

    async def unmark(self, read_key: str) -> None:
        """Take back the read marks made under `read_key` when the event telling them could not
        be kept: marks made by another request stay."""
        await self.session.execute(
            update(Notification)
            .where(Notification.read_key == read_key)
            .values(read_at=None, read_key=None)
        )

    async def untold_reads(self, before: float, limit: int) -> list[tuple[str, str]]:
        """The keys (and person) of read marks made before `before` whose event was never kept,
        oldest first: a read of a partial index that holds only those."""
        query = (
            select(Notification.read_key, Notification.user_id)
            .where(Notification.read_key.is_not(None), Notification.read_at < before)
            .group_by(Notification.read_key, Notification.user_id)
            .order_by(func.min(Notification.read_at), Notification.read_key)
            .limit(limit)
        )
        return [(key, user) for key, user in (await self.session.execute(query)).all() if key]
