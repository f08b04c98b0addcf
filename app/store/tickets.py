"""Identity state one node keeps in its database (with Redis it is kept there instead).

Used tickets: a ticket's id is inserted once; a second insert of the same id fails on the primary
key, atomically across processes sharing the database. Revocations: a person's latest one, and
none older than the longest a credential lives (deleted as new ones are saved).
"""

from __future__ import annotations

import time

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..errors import Unavailable
from .db import dialect_insert
from .models import Revocation, UsedTicket
from .repositories import rowcount

PURGE_EVERY = 100
"""Expired rows are deleted on one claim in this many: the table stays as small as the tickets
of the last `ticket_ttl` seconds."""


class SqlTicketClaims:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._claims = 0
        self.rows = 0
        """Rows in `used_tickets` (the `fourcast_used_tickets` gauge): counted when expired
        rows are deleted (the first claim after start, then one in PURGE_EVERY), and kept up
        to date between (without Redis this process is the table's only writer)."""

    async def claim(self, jti: str, expires_at: float) -> bool:
        self._claims += 1
        try:
            async with self._sessions() as session:
                if self._claims % PURGE_EVERY == 1:
                    expired = delete(UsedTicket).where(UsedTicket.expires_at < time.time())
                    await session.execute(expired)
                    count = select(func.count()).select_from(UsedTicket)
                    self.rows = int((await session.execute(count)).scalar_one())
                try:
                    await session.execute(insert(UsedTicket).values(jti=jti, expires_at=expires_at))
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    return False
        except SQLAlchemyError as exc:
            raise Unavailable(
                f"ticket store unavailable: {type(exc).__name__}", retry_after=2
            ) from None
        self.rows += 1
        return True

    async def release(self, jti: str) -> None:
        try:
            async with self._sessions() as session:
                gone = await session.execute(delete(UsedTicket).where(UsedTicket.jti == jti))
                await session.commit()
        except SQLAlchemyError as exc:
            raise Unavailable(
                f"ticket store unavailable: {type(exc).__name__}", retry_after=2
            ) from None
        self.rows = max(0, self.rows - rowcount(gone))


class SqlRevocations:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def save(self, user: str, at: float, expired_before: float) -> None:
        async with self._sessions() as session:
            await session.execute(
                delete(Revocation).where(
                    Revocation.revoked_at < expired_before, Revocation.user_id != user
                )
            )
            # One statement, so that two sign-outs of one person at once (two nodes, or two
            # requests) both land: the later time stands.
            upsert = dialect_insert(session, Revocation).values(user_id=user, revoked_at=at)
            await session.execute(
                upsert.on_conflict_do_update(
                    index_elements=[Revocation.user_id],
                    set_={"revoked_at": upsert.excluded.revoked_at},
                    where=Revocation.revoked_at < upsert.excluded.revoked_at,
                )
            )
            await session.commit()

    async def load(self, since: float) -> list[tuple[str, float]]:
        async with self._sessions() as session:
            await session.execute(delete(Revocation).where(Revocation.revoked_at < since))
            rows = await session.execute(select(Revocation.user_id, Revocation.revoked_at))
            await session.commit()
            return [(user, at) for user, at in rows]
