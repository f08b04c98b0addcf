"""Identity state a node keeps in its database: used tickets and revocations, on both databases."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.errors import Unavailable
from app.identity.revocation import Revocations
from app.store.db import create_engine, create_session_factory
from app.store.models import Revocation
from app.store.tickets import SqlRevocations, SqlTicketClaims


async def test_a_ticket_is_claimed_once(engine: AsyncEngine) -> None:
    claims = SqlTicketClaims(create_session_factory(engine))
    assert await claims.claim("t1", time.time() + 60)
    assert not await claims.claim("t1", time.time() + 60)
    assert await claims.claim("t2", time.time() + 60)


async def test_a_ticket_given_back_can_be_claimed_once_more(engine: AsyncEngine) -> None:
    """A poll refused as it is answered gives its ticket back (OwnTokens.give_back_ticket)."""
    claims = SqlTicketClaims(create_session_factory(engine))
    assert await claims.claim("t1", time.time() + 60)
    assert await claims.claim("t2", time.time() + 60)
    await claims.release("t1")
    assert claims.rows == 1
    assert await claims.claim("t1", time.time() + 60)
    assert not await claims.claim("t1", time.time() + 60)
    assert not await claims.claim("t2", time.time() + 60)  # only the one given back


async def test_revocations_past_their_lifetime_are_deleted_as_new_ones_are_saved(
    engine: AsyncEngine,
) -> None:
    """The table holds the revocations of the last `ttl` seconds, not every sign-out since the
    node started."""
    sessions = create_session_factory(engine)
    store = SqlRevocations(sessions)
    now = time.time()
    await store.save("long-ago", now - 3600, now - 7200)
    revocations = Revocations(ttl=60, store=store)
    await revocations.revoke("alice")
    await revocations.revoke("alice")
    async with sessions() as session:
        users = (await session.execute(select(Revocation.user_id))).scalars().all()
    assert users == ["alice"]


async def test_a_database_failure_while_claiming_a_ticket_is_unavailable(tmp_path: Path) -> None:
    """503 (retry later), as with Redis, rather than an unhandled error (500)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'fourcast.db'}")
    try:
        with pytest.raises(Unavailable):
            await SqlTicketClaims(create_session_factory(engine)).claim("t1", time.time() + 60)
    finally:
        await engine.dispose()


async def test_sign_outs_of_one_person_at_once_all_land_and_the_latest_stands(
    engine: AsyncEngine,
) -> None:
    """Two tabs signing out, or a service and the person: on PostgreSQL a delete-then-insert
    raced on the primary key, and the loser got 503 and was never applied on its node."""
    sessions = create_session_factory(engine)
    store = SqlRevocations(sessions)
    now = time.time()
    await asyncio.gather(*(store.save("u1", now + n / 1000, now - 3600) for n in range(8)))
    await store.save("u1", now - 1, now - 3600)  # an older one, landing last, changes nothing
    assert await store.load(now - 3600) == [("u1", now + 7 / 1000)]


async def test_a_failed_revocation_says_unavailable_without_the_storage_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'fourcast.db'}")
    try:
        revocations = Revocations(ttl=60, store=SqlRevocations(create_session_factory(engine)))
        with pytest.raises(Unavailable) as refused:
            await revocations.revoke("alice")
    finally:
        await engine.dispose()
    assert refused.value.message == "revocation store unavailable"
    assert any("no such table" in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]
