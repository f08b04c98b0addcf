"""Bring a database's schema up to date: `fourcast migrate`, or from the app at start-up.

Runs Alembic on a connection from the app's own engine factory (same SQLite pragmas, same parent
folder creation) inside the caller's event loop. The Alembic config is built here, in code, so an
installed package needs no alembic.ini and no particular working directory.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from ..paths import migrations_dir
from .db import POSTGRES_PREFIX, create_engine
from .migration_lock import migration_lock
from .sqlite_appender import sqlite_file

PACKAGE = (__package__ or "app").split(".")[0]  # `app` in a checkout, `fourcast` installed
ROOT = Path(__file__).resolve().parents[2]
"""The checkout's root (where `alembic.ini` is, for the `alembic` command line)."""


def alembic_config(url: str | None = None) -> Config:
    """The project's Alembic config, independent of the working directory."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("path_separator", "os")
    # alembic/env.py imports the settings and models from this package, whatever its name.
    config.attributes["package"] = PACKAGE
    # Kept out of the ini options: a URL with %-escapes would break ConfigParser interpolation.
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


async def upgrade_to_head(url: str, revision: str = "head") -> None:
    """Apply every pending migration to the database at `url`."""
    await _run(url, lambda config: command.upgrade(config, revision))


async def downgrade_to(url: str, revision: str) -> None:
    """Undo migrations down to `revision` (`base`: an empty schema)."""
    await _run(url, lambda config: command.downgrade(config, revision))


async def _run(url: str, step: Callable[[Config], None]) -> None:
    # Migrations may run long (DDL on big tables): no statement timeout for them.
    options: dict[str, Any] = (
        {"connect_args": {"command_timeout": None}} if url.startswith(POSTGRES_PREFIX) else {}
    )
    engine = create_engine(url, **options)
    try:
        # One node at a time: the others wait here, then find the schema up to date.
        async with migration_lock(engine, sqlite_file(engine)), engine.connect() as connection:

            def run(sync_connection: Connection) -> None:
                config = alembic_config(url)
                config.attributes["connection"] = sync_connection
                step(config)

            await connection.run_sync(run)
            await connection.commit()
    finally:
        await engine.dispose()


def head_revision() -> str | None:
    """The newest migration this package ships."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def main(argv: list[str] | None = None) -> None:
    """`python -m app.store.migrate [URL]`: migrate the given or configured database to head."""
    from ..settings import load_settings

    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else load_settings().resolved_database_url
    print(f"migrating the database at {redact_url(url)} to {head_revision()} ...", flush=True)
    asyncio.run(upgrade_to_head(url))
    print(f"database at {redact_url(url)} is at the latest revision ({head_revision()})")


def redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    main()
