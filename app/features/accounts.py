"""People: guest sign-up and making sure a token's person exists in the store."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..bus.events import now_ms
from ..identity.principal import Principal
from ..store.models import User
from ..store.repositories import Users


class Accounts:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._known: set[str] = set()

    async def create_guest(self, name: str) -> str:
        async with self._sessions.begin() as session:
            user = await Users(session).create_guest(name)
        self._known.add(user.id)
        return user.id

    async def ensure(self, session: AsyncSession, principal: Principal) -> None:
        """A signed token's person gets a row on first use (tokens may come from elsewhere)."""
        if principal.id in self._known:
            return
        if await Users(session).get(principal.id) is None:
            session.add(
                User(id=principal.id, name=principal.name or principal.id, created_at=now_ms())
            )
            await session.flush()
        self._known.add(principal.id)
