"""Notifications to people: kept in the store, delivered as events on their `user:<id>` channel.

The row and the event are both durable; a client that was offline reads what it missed from its
channel by cursor, and the unread count comes from the store, so every client of a person agrees.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..bus.events import Event, now_ms
from ..errors import InvalidInput, NotFound, Unavailable
from ..identity.principal import PERSON_ID_RULE, Principal, is_person_id
from ..store.notifications import Notifications as NotificationRows
from ..store.person_lock import PersonLock
from ..store.repositories import Users, is_notification_id, new_id
from .notification_fields import MAX_BODY, MAX_TITLE, checked_text, checked_url, notification_json
from .publishing import SERVER, Publisher

log = logging.getLogger(__name__)

MAX_RECOVERED = 1000
"""Notifications left unsent that one start publishes (each a publish): a bound on the start."""
OWN_KEY = "notification"
"""Keys of notifications sent without an Idempotency-Key: `notification␞<id>`. No service's key
collides: theirs begin with the service's `service:<name>`."""
READ_KEY = "notification.read"
"""Keys of read marks: `notification.read␞<id>` for one notification (read once: a retry of a
mark taken back finds its event if it was kept after all), `notification.read-all␞<new id>`."""
READ_ALL_KEY = "notification.read-all"


class Notifier:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        *,
        anyone: bool = False,
    ) -> None:
        """`anyone`: an embedding application's tokens name people (docs/tokens.md), who have
        no row here until they come; a notification may be sent to any of them, before too.
        Else only people who signed in here are someone (an unknown id is 404)."""
        self._sessions = sessions
        self._lock = PersonLock()
        self._publisher = publisher
        self._anyone = anyone

    async def send(
        self, body: dict[str, Any], service: Principal, *, idempotency_key: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """The notification sent, and whether it is new (False: a retry under `idempotency_key`,
        answered with the first one). Keys are the sending service's, per person."""
        user = body.get("user")
        if not is_person_id(user):
            raise InvalidInput(f"user must match {PERSON_ID_RULE}", code="invalid_notification")
        title = checked_text(body, "title", MAX_TITLE)
        text = checked_text(body, "body", MAX_BODY, required=False)
        url = checked_url(body.get("url"))
        # Every event is published under a key kept in its row until the event is attached:
        # a server stopped in between publishes the row again as it starts, and the key makes
        # an event kept after all be found, not told twice. The service's key, when it gives one
        # (sent by the server, so the service's name scopes it); else one of the row's own.
        notification_id = new_id()
        key = (
            f"{service.sender}\x1e{idempotency_key}"
            if idempotency_key is not None
            else f"{OWN_KEY}\x1e{notification_id}"
        )
        # The person's lock, from the row to its event: see app/store/person_lock.py.
        async with self._lock.hold(user):
            async with self._sessions.begin() as session:
                users = Users(session)
                if self._anyone:
                    await users.ensure_addressable(user)  # kept for them until they come
                elif await users.get(user) is None:
                    raise NotFound(f"no user {user!r}")
                row = await NotificationRows(session).create(
                    user, title, text, url, notification_id=notification_id, publish_key=key
                )
                payload = notification_json(row)
            # Not inside that transaction: SQLite has one writer, and the event log's group commit
            # is another. If the event cannot be kept, the row is taken back.
            try:
                result = await self._publisher.publish_trusted(
                    SERVER, f"user:{user}", "notification", payload, idempotency_key=key
                )
            except BaseException:
                async with self._sessions.begin() as session:
                    await NotificationRows(session).delete(row.id)
                raise
            event = result.event
            assert event is not None and event.seq is not None
            if result.created:
                async with self._sessions.begin() as session:
                    await NotificationRows(session).set_event(row.id, event.channel, event.seq)
            else:
                payload = await self._attach(row.id, event)
            return {**payload, "event_id": event.cursor}, result.created

    async def _attach(self, row_id: str, event: Event) -> dict[str, Any]:
        """Attach an event found under a row's key: the notification it told of is the one kept.
        A retry's own row is not (the first send answers it), and the first's row is kept again
        if its send took it back (503) after all: its event had been kept (a lost reply), so
        clients were told of it."""
        assert event.seq is not None
        payload: dict[str, Any] = orjson.loads(event.data)
        async with self._sessions.begin() as session:
            rows = NotificationRows(session)
            if payload["id"] != row_id:
                await rows.delete(row_id)
            await rows.restore(payload, event.channel, event.seq)
        return payload

    async def recover(self, limit: int = MAX_RECOVERED) -> int:
        """Publish the events a stopped server left unpublished (run as a server starts): those
        of notifications kept without one (its server stopped between the row and the event),
        then those of read marks never told (between the mark and its event); up to `limit` of
        each, oldest first. Each goes out under the key its request used, so an event kept after
        all is found, not told twice. The event log away: the rest wait for the next start. One
        another node is publishing right then may be published by both: the key makes it one
        event. How many were published."""
        async with self._sessions() as session:
            rows = NotificationRows(session)
            unsent = await rows.unsent(now_ms(), limit)
            untold = await rows.untold_reads(now_ms(), limit)
        done = 0
        try:
            for row in unsent:
                async with self._lock.hold(row.user_id):
                    result = await self._publisher.publish_trusted(
                        SERVER,
                        f"user:{row.user_id}",
                        "notification",
                        notification_json(row),
                        idempotency_key=row.publish_key,
                    )
                    assert result.event is not None
                    await self._attach(row.id, result.event)
                done += 1
            for key, user in untold:
                async with self._lock.hold(user):
                    await self._tell_read(user, key)
                done += 1
        except Unavailable as exc:
            left = len(unsent) + len(untold) - done
            log.warning("%d notification events left unpublished: %s", left, exc)
        if done:
            log.warning("published %d notification events a stopped server had left", done)
        return done

    async def list(self, user: str, *, unread_only: bool, limit: int = 50) -> dict[str, Any]:
        async with self._sessions() as session:
            rows = NotificationRows(session)
            items = await rows.list_for_user(user, unread_only=unread_only, limit=limit)
            unread = await rows.unread_count(user)
        return {"notifications": [notification_json(n) for n in items], "unread": unread}

    async def mark_read(self, user: str, notification_id: str | None) -> dict[str, Any]:
        """Mark one (or, with None, every) notification read, and tell the person's other clients."""
        if notification_id is not None and not is_notification_id(notification_id):
            raise NotFound("no such notification")  # not one this server made: no query
        # As a send's row, the marks keep the key their event is published under until the event
        # is kept: a server stopped in between leaves them to the next one to start (`recover`).
        key = (
            f"{READ_ALL_KEY}\x1e{new_id()}"
            if notification_id is None
            else f"{READ_KEY}\x1e{notification_id}"
        )
        # The person's lock, from the mark to its event: the count it tells is the one the events
        # before it add up to (app/store/person_lock.py).
        async with self._lock.hold(user):
            async with self._sessions.begin() as session:
                rows = NotificationRows(session)
                if notification_id is None:
                    changed = await rows.mark_all_read(user, key) > 0
                else:
                    marked = await rows.mark_read(user, notification_id, key)
                    if marked is None:
                        raise NotFound("no such notification")
                    changed = marked
                unread = await rows.unread_count(user)
            if changed:
                # Only a change is told: marking again what is read already writes no event, so
                # the person's requests cannot fill their channel (each event is kept).
                await self._tell_read(user, key, unread, undo=True)
            return {"unread": unread}

    async def _tell_read(
        self,
        user: str,
        key: str,
        unread: int | None = None,
        *,
        undo: bool = False,
    ) -> None:
        """Publish the `notification.read` event of the marks made under `key` (the person's
        unread count read now unless given), then drop the key from their rows. `undo`: the
        marks are taken back if the event cannot be kept (as `send` takes back its row): else
        the retry would find them read already and tell the person's other clients nothing."""
        if unread is None:
            async with self._sessions() as session:
                unread = await NotificationRows(session).unread_count(user)
        kind, _, marked = key.partition("\x1e")
        try:
            await self._publisher.publish_trusted(
                SERVER,
                f"user:{user}",
                "notification.read",
                {"id": None if kind == READ_ALL_KEY else marked, "unread": unread},
                idempotency_key=key,
            )
        except BaseException:
            if undo:
                async with self._sessions.begin() as session:
                    await NotificationRows(session).unmark(key)
            raise
        async with self._sessions.begin() as session:
            await NotificationRows(session).told(key)
