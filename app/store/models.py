"""Tables: the durable event log, and the little state features keep beside it.

Times are milliseconds since the epoch as doubles, like an event's `ts`: one representation on the
wire and in both databases (SQLite has no time zone-aware timestamp type).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CHAT_MESSAGE = "chat.message"
"""The event type of a chat message; room history is these events of a `room:<name>` channel."""


IS_CHAT_MESSAGE = text(f"type = '{CHAT_MESSAGE}'")
"""The predicate as a literal, not a bound parameter: only then can a query use the partial index."""
HAS_IDEMPOTENCY_KEY = text("idempotency_key IS NOT NULL")
IS_UNSENT = text("publish_key IS NOT NULL")
IS_READ_UNTOLD = text("read_key IS NOT NULL")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class EventRow(Base):
    """One durable event: the bus's log, and the chat history beyond the bus's retention."""

    __tablename__ = "events"

    channel: Mapped[str] = mapped_column(String(128), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text)
    """The event's `data`, JSON-encoded exactly as it was published."""
    ts: Mapped[float] = mapped_column(Double)
    sender: Mapped[str] = mapped_column(String(200))
    idempotency_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    """`sender\x1fchannel\x1fkey` of a publish made with an Idempotency-Key, kept in the event's
    own transaction so that a retry after a restart still finds it (app/bus/idempotency.py)."""

    __table_args__ = (
        # Room history pages through chat messages only; a partial index keeps presence and
        # other events out of it, and costs the group commit nothing for non-chat events.
        Index(
            "ix_events_chat_messages",
            "channel",
            "seq",
            sqlite_where=IS_CHAT_MESSAGE,
            postgresql_where=IS_CHAT_MESSAGE,
        ),
        # Only idempotent publishes are indexed: the others pay nothing for it.
        Index(
            "ix_events_idempotency_key",
            "idempotency_key",
            sqlite_where=HAS_IDEMPOTENCY_KEY,
            postgresql_where=HAS_IDEMPOTENCY_KEY,
        ),
    )


class HighestEpoch(Base):
    """The highest Redis epoch any node has seen (app/bus/redis/epoch.py): one row, written only
    when a node meets a higher epoch (Redis lost data), read as a node starts. Without it a start
    would find the epoch in `max(seq)` of the events table, a scan of the whole archive."""

    __tablename__ = "highest_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    """Always 1: the table holds one row, or none before the archive was first read."""
    epoch: Mapped[int] = mapped_column(BigInteger)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """A guest's generated id, or an application token's `sub` (1-64 characters)."""
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Double, index=True)
    """Indexed: a starting server counts the people made within a token's life (guestroom.py)."""


class Room(Base):
    __tablename__ = "rooms"

    name: Mapped[str] = mapped_column(String(123), primary_key=True)
    """The part after `room:` in the room's channel name (128 characters in all)."""
    created_by: Mapped[str] = mapped_column(String(200))
    """The creating identity, as in an event's `from` (`user:<id>` or `service:<name>`)."""
    created_at: Mapped[float] = mapped_column(Double)


class Membership(Base):
    __tablename__ = "memberships"

    # The primary key is the (room, user) pair: a person is in a room at most once.
    room: Mapped[str] = mapped_column(
        ForeignKey("rooms.name", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    joined_at: Mapped[float] = mapped_column(Double)

    __table_args__ = (
        # A page of a room's members (in the order they joined) is a range of this index,
        # rather than a sort of every membership of the room.
        Index("ix_memberships_room_joined_at", "room", "joined_at", "user_id"),
    )


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[float] = mapped_column(Double)
    read_at: Mapped[float | None] = mapped_column(Double)
    # The `user:<id>` event that delivered it. Deliberately not a foreign key: with the Redis bus
    # the events table is an archive written after the fact, so the row may not exist yet.
    event_channel: Mapped[str | None] = mapped_column(String(128))
    event_seq: Mapped[int | None] = mapped_column(BigInteger)
    publish_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The idempotency key its event is published under, until the event is attached: a row that
    still has one may have no event (its server stopped in between), and is published again
    under it as a server starts (app/features/notifications.py)."""
    read_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The key the `notification.read` event of its read mark is published under, until that
    event is kept: a row that still has one was marked read with its person's clients perhaps
    never told, and is told again under it as a server starts. Rows marked at once share it."""

    __table_args__ = (
        Index("ix_notifications_user_id_created_at", "user_id", "created_at"),
        Index("ix_notifications_user_id_read_at", "user_id", "read_at"),
        # Only rows whose event is not attached yet: a row leaves it as its event is attached.
        Index(
            "ix_notifications_unsent",
            "created_at",
            sqlite_where=IS_UNSENT,
            postgresql_where=IS_UNSENT,
        ),
        Index(
            "ix_notifications_read_untold",
            "read_at",
            sqlite_where=IS_READ_UNTOLD,
            postgresql_where=IS_READ_UNTOLD,
        ),
    )


class UsedTicket(Base):
    """A redeemed single-use ticket (app/store/tickets.py), kept until the ticket has expired."""

    __tablename__ = "used_tickets"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Double, index=True)
    """Epoch seconds."""


class Revocation(Base):
    """A person's sessions revoked at `revoked_at` (app/store/tickets.py): credentials issued
    until then are refused. Kept as long as a credential can live."""

    __tablename__ = "revocations"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_at: Mapped[float] = mapped_column(Double, index=True)
    """Epoch seconds."""
