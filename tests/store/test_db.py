"""Engine set-up: the SQLite pragmas behind "acknowledged means durable", and URL handling."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from app.store.db import create_engine, create_session_factory, dialect_name


async def test_sqlite_is_configured_for_durability(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "fourcast.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as conn:
            assert (await conn.scalar(text("PRAGMA journal_mode"))) == "wal"
            assert (await conn.scalar(text("PRAGMA synchronous"))) == 2  # FULL
            assert (await conn.scalar(text("PRAGMA foreign_keys"))) == 1
            assert (await conn.scalar(text("PRAGMA busy_timeout"))) >= 1000
        assert path.exists(), "the parent folders and the file are created"
    finally:
        await engine.dispose()


async def test_sqlite_in_memory_works(tmp_path: Path) -> None:
    engine = create_engine("sqlite+aiosqlite://")
    try:
        async with engine.connect() as conn:
            assert (await conn.scalar(text("SELECT 1"))) == 1
    finally:
        await engine.dispose()


async def test_engine_and_sessions_work(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert dialect_name(engine) in {"sqlite", "postgresql"}
        async with create_session_factory(engine)() as session:
            assert (await session.scalar(text("SELECT 1"))) == 1
            assert dialect_name(session) == dialect_name(engine)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite:///plain.db", "postgresql://h/d", ""])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="must start with"):
        create_engine(url)
