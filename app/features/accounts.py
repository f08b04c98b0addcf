"""People: guest sign-up and making sure a token's person exists in the store."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..identity.principal import Principal
from ..store.repositories import Users

KNOWN_KEPT = 100_000
"""People remembered as having a row: past it the memory starts again (application tokens can
name any number of people), and the next request of each inserts nothing twice."""


class Accounts:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._known: set[str] = set()

    @property
    def known(self) -> int:
        """People remembered now (at most KNOWN_KEPT; the `fourcast_accounts_known` gauge)."""
        return len(self._known)

    async def create_guest(self, name: str, signed_up: float | None = None) -> str:
        """A guest's row, made at `signed_up` (epoch seconds: when the guest room counted it)."""
        created_at = None if signed_up is None else round(signed_up * 1000, 3)
        async with self._sessions.begin() as session:
            user = await Users(session).create_guest(name, created_at)
        self._remember(user.id)
        return user.id

    async def made_since(self, since: float, width: float, held_since: float) -> dict[int, int]:
        """People whose row was made since `since` (seconds), per `created_at // width`, but for
        those revoked since `held_since`."""
        async with self._sessions() as session:
            return await Users(session).made_since(since * 1000, width * 1000, held_since)

    async def ensure(self, session: AsyncSession, principal: Principal) -> None:
        """A signed token's person gets a row on first use (tokens may come from elsewhere)."""
        if principal.id in self._known:
            return
        await Users(session).ensure(principal.id, principal.name or principal.id)
        self._remember(principal.id)

    def _remember(self, user: str) -> None:
        if len(self._known) >= KNOWN_KEPT:
            self._known.clear()
        self._known.add(user)
