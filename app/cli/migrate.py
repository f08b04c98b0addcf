"""`fourcast migrate [URL]`: bring the database (FOURCAST_DATABASE_URL, or the default SQLite file
under FOURCAST_DATA_DIR) to the newest schema."""

from __future__ import annotations

import argparse
import asyncio

from .common import USAGE, Failure, note


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("database_url", nargs="?", help="default: the configured database")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..settings import load_settings
    from ..store.migrate import head_revision, redact_url, upgrade_to_head

    url = args.database_url or load_settings().resolved_database_url
    try:
        shown = redact_url(url)
    except Exception:  # not echoed: an unparseable URL may still hold a password
        raise Failure(
            "not a database URL: give e.g. sqlite+aiosqlite:///PATH or "
            "postgresql+asyncpg://USER:PASSWORD@HOST/DB",
            USAGE,
        ) from None
    head = head_revision()
    note(f"fourcast migrate: bringing {shown} to revision {head} ...")
    try:
        asyncio.run(upgrade_to_head(url))
    except Exception as exc:
        raise Failure(f"migration failed: {type(exc).__name__}: {exc}") from None
    print(f"database at {shown} is at the latest revision ({head})")
    return 0
