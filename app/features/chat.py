"""Chat rooms: validated messages, rooms and memberships, and history beyond the bus's retention."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..bus import Bus, Event
from ..errors import BadParameter, Forbidden, InvalidInput, NotFound
from ..identity.budgets import Budgets, ReadCharge
from ..identity.limits import address_key
from ..identity.principal import Principal
from ..store.models import CHAT_MESSAGE
from ..store.repositories import Memberships, Rooms, room_channel
from .accounts import Accounts
from .chat_history import BusMessages
from .publishing import Publisher

ROOM_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_TEXT = 4000
HISTORY_DEFAULT = 100
HISTORY_MAX = 500
ROOMS_DEFAULT = 100
ROOMS_MAX = 1000
MEMBERS_DEFAULT = 500
MEMBERS_MAX = 1000


def validate_room_name(name: object) -> str:
    if not isinstance(name, str) or not ROOM_NAME_RE.fullmatch(name):
        raise InvalidInput("room name must match ^[A-Za-z0-9_.-]{1,64}$", code="invalid_room")
    return name


def parse_member_cursor(raw: str) -> tuple[float, str]:
    """A members page's `next`, `<joined_at>_<user id>`: the last member it listed, so a page
    goes on after them whoever joins or leaves meanwhile."""
    joined, _, user = raw.partition("_")
    try:
        joined_at = float(joined)
    except ValueError:
        joined_at = math.nan
    # Only the form `next` is written in: `float` also takes spaces, `_` and `1e3`.
    if not (math.isfinite(joined_at) and repr(joined_at) == joined and 1 <= len(user) <= 64):
        raise BadParameter("after must be a members page's next", code="invalid_cursor")
    return joined_at, user


def chat_message_rule(principal: Principal, channel: str, data: Any) -> Any:
    """A chat message is `{"text"}`: trimmed, 1-4,000 characters, no control characters.

    Text is kept exactly as typed otherwise: markup is data, and pages render it as text.
    """
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise InvalidInput('chat.message data must be {"text": "..."}', code="invalid_message")
    text = data["text"].strip()
    if not text:
        raise InvalidInput("message text is empty", code="invalid_message")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"message text is over {MAX_TEXT} characters", code="invalid_message")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise InvalidInput("message text has control characters", code="invalid_message")
    # The author's display name travels with the message, so no client needs a lookup.
    return {"text": text, "name": principal.name}


def server_only_rule(principal: Principal, channel: str, data: Any) -> Any:
    if not principal.is_service:
        raise Forbidden("only the server publishes presence events")
    return data


@dataclass(slots=True)
class HistoryPage:
    messages: list[Event]
    before: str | None
    """Cursor for the next older page, or None when this is the oldest."""


class Chat:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        publisher: Publisher,
        accounts: Accounts,
        budgets: Budgets | None = None,
    ) -> None:
        self._sessions = sessions
        self._budgets = budgets
        """Creations and joins per person and per address: each may add a room (and a
        membership) for good, and one address may sign up many guests, each with a budget."""
        self._bus = bus
        self._accounts = accounts
        self._archives_late = getattr(bus.backend, "archiver", None) is not None
        self.bus_messages = BusMessages(bus.backend)
        """Redis: acknowledged messages reach the SQL archive a linger later (bus/archive.py)."""
        publisher.add_rule("room", CHAT_MESSAGE, chat_message_rule, never_ephemeral=True)
        publisher.add_rule("room", "presence.join", server_only_rule)
        publisher.add_rule("room", "presence.leave", server_only_rule)

    async def list_rooms(self, after: str | None, limit: int) -> dict[str, Any]:
        """A page of rooms by name, and the name to page on from (None: the last page). Rooms
        are never deleted and anyone signed in may make some: the list is paged, never cut."""
        async with self._sessions() as session:
            rooms = await Rooms(session).list_rooms(after, limit + 1)
        page = rooms[:limit]
        return {
            "rooms": [
                {"name": r.name, "members": r.members, "created_at": r.created_at} for r in page
            ],
            "next": page[-1].name if len(rooms) > limit else None,
        }

    async def create_room(
        self, principal: Principal, name: object, ip: str
    ) -> tuple[dict[str, Any], bool]:
        name = validate_room_name(name)
        self._spend(principal, ip)
        async with self._sessions.begin() as session:
            if principal.is_user:
                await self._accounts.ensure(session, principal)
            rooms = Rooms(session)
            room = await rooms.create(name, principal.sender)
            created = room is not None
            if room is None:
                room = await rooms.get(name)
                assert room is not None
        return {
            "name": room.name,
            "created_by": room.created_by,
            "created_at": room.created_at,
        }, created

    async def join(self, principal: Principal, name: object, ip: str) -> bool:
        name = validate_room_name(name)
        self._spend(principal, ip)
        async with self._sessions.begin() as session:
            await self._accounts.ensure(session, principal)
            await Rooms(session).ensure(name, principal.sender)
            return await Memberships(session).join(name, principal.id)

    def _spend(self, principal: Principal, ip: str) -> None:
        """The person's budget first: a guest over their own leaves the address's untouched."""
        if self._budgets is not None and principal.is_user:
            self._budgets.room.take_now(principal.id)
            self._budgets.room_address.take_now(address_key(ip))

    async def leave(self, principal: Principal, name: object) -> bool:
        name = validate_room_name(name)
        async with self._sessions.begin() as session:
            return await Memberships(session).leave(name, principal.id)

    async def members(self, name: object, after: str | None, limit: int) -> dict[str, Any]:
        """A page of a room's members in the order they joined, and the cursor to page on from
        (None: the last page). Any number of guests may join one room: paged, never whole."""
        name = validate_room_name(name)
        position = None if after is None else parse_member_cursor(after)
        async with self._sessions() as session:
            if await Rooms(session).get(name) is None:
                raise NotFound(f"no room {name!r}")
            members = await Memberships(session).members(name, position, limit + 1)
        page = members[:limit]
        last = page[-1] if len(members) > limit else None
        return {
            "members": [
                {"user": m.user_id, "name": m.name, "joined_at": m.joined_at} for m in page
            ],
            "next": None if last is None else f"{last.joined_at!r}_{last.user_id}",
        }

    async def history(
        self, name: object, before: int | None, limit: int, charge: ReadCharge | None = None
    ) -> HistoryPage:
        """Newest messages first page, older pages by cursor; the database is the archive.

        The bus's retained log may be ahead of the archive (the Redis backend archives after
        acknowledging, with a linger), so its newest messages are merged into the first page,
        and into an older page while the bus still retains its `before`: a message on no newer
        page and not yet archived is never skipped. The bus is read back from `before` as far
        as the page needs (chat_history.py), and `charge` pays for what is read, before it is.
        """
        name = validate_room_name(name)
        async with self._sessions() as session:
            stored = await Rooms(session).history(name, before=before, limit=limit + 1)
        merged = {e.seq: e for e in stored}
        if before is None or self._archives_late:
            # With a full page from the archive, nothing below its oldest can be on this page.
            lowest = stored[0].seq if len(stored) > limit else None
            channel = room_channel(name)
            for event in await self.bus_messages.below(channel, before, limit + 1, lowest, charge):
                merged[event.seq] = event
        ordered = [merged[seq] for seq in sorted(merged)]  # type: ignore[type-var]
        more = len(ordered) > limit
        page = ordered[-limit:]
        older = page[0].cursor if more and page else None
        return HistoryPage(page, older)
