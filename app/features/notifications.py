"""Notifications to people: kept in the store, delivered as events on their `user:<id>` channel.

The row and the event are both durable; a client that was offline reads what it missed from its
channel by cursor, and the unread count comes from the store, so every client of a person agrees.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..bus.events import Event, now_ms
from ..errors import InvalidInput, NotFound, Unavailable
from ..identity.principal import PERSON_ID_RULE, Principal, is_person_id
from ..store.models import Notification
from ..store.notifications import Notifications as NotificationRows
from ..store.repositories import Users, is_notification_id, new_id
from .publishing import SERVER, Publisher

log = logging.getLogger(__name__)

MAX_TITLE = 200
MAX_BODY = 4000
MAX_URL = 2048
MAX_RECOVERED = 1000
"""Notifications left unsent that one start publishes (each a publish): a bound on the start."""
OWN_KEY = "notification"
"""Keys of notifications sent without an Idempotency-Key: `notification␞<id>`. No service's key
collides: theirs begin with the service's `service:<name>`."""


def notification_json(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "user": n.user_id,
        "title": n.title,
        "body": n.body,
        "url": n.url,
        "created_at": n.created_at,
        "read_at": n.read_at,
    }


def _text(body: dict[str, Any], name: str, limit: int, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        what = "a non-empty string" if required else "a string"
        raise InvalidInput(f"{name} must be {what}", code="invalid_notification")
    if len(value) > limit:
        raise InvalidInput(f"{name} is over {limit} characters", code="invalid_notification")
    if "\x00" in value:  # no database text type holds it (PostgreSQL refuses it)
        raise InvalidInput(f"{name} holds a NUL character", code="invalid_notification")
    return value.strip()


def _url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_URL or "\x00" in value:
        raise InvalidInput("url must be a string of at most 2048 characters", code="invalid_url")
    parts = urlsplit(value)
    # Only links a page can safely follow: http(s) or a path on this site (never javascript:).
    if parts.scheme not in ("http", "https", "") or (
        # A path on this site: `//host` and `/\host` are other sites to a browser.
        not parts.scheme and (not value.startswith("/") or value[1:2] in ("/", "\\"))
    ):
        raise InvalidInput("url must be http(s) or a path starting with /", code="invalid_url")
    return value


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
        title = _text(body, "title", MAX_TITLE)
        text = _text(body, "body", MAX_BODY, required=False)
        url = _url(body.get("url"))
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
        """Publish the notifications kept without an event: their server stopped between the row
        and the event (up to `limit`, oldest first; run as a server starts). Each goes out under
        the key its send used, so an event kept after all is found and attached, not told twice.
        The event log away: the rest wait for the next start. A row another node is sending
        right then may be published by both: the key makes it one event. How many were
        published."""
        async with self._sessions() as session:
            rows = await NotificationRows(session).unsent(now_ms(), limit)
        done = 0
        for row in rows:
            try:
                result = await self._publisher.publish_trusted(
                    SERVER,
                    f"user:{row.user_id}",
                    "notification",
                    notification_json(row),
                    idempotency_key=row.publish_key,
                )
            except Unavailable as exc:
                log.warning("%d notifications left without their event: %s", len(rows) - done, exc)
                break
            assert result.event is not None
            await self._attach(row.id, result.event)
            done += 1
        if done:
            log.warning("published %d notifications a stopped server had left unsent", done)
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
        at = now_ms()
        async with self._sessions.begin() as session:
            rows = NotificationRows(session)
            if notification_id is None:
                changed = await rows.mark_all_read(user, at) > 0
            else:
                marked = await rows.mark_read(user, notification_id, at)
                if marked is None:
                    raise NotFound("no such notification")
                changed = marked
            unread = await rows.unread_count(user)
        if changed:
            # Only a change is told: marking again what is read already writes no event, so
            # the person's requests cannot fill their channel (each event is kept).
            try:
                await self._publisher.publish_trusted(
                    SERVER,
                    f"user:{user}",
                    "notification.read",
                    {"id": notification_id, "unread": unread},
                )
            except BaseException:
                # Not told, so not kept (as `send` takes back its row): else the retry would
                # find it read already and tell the person's other clients nothing.
                async with self._sessions.begin() as session:
                    await NotificationRows(session).unmark(user, at, notification_id)
                raise
        return {"unread": unread}
