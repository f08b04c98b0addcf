"""Alembic environment: async engines, the app's URL, and SQLite-friendly batch migrations.

Two ways in. From the command line in a checkout (`alembic upgrade head`) this builds its own
engine from the app's settings. From code (`store.migrate.upgrade_to_head`, which `fourcast migrate`
runs) the caller passes an open connection in `config.attributes["connection"]`, so migrating never
starts a second event loop, and the package's name in `config.attributes["package"]`: `app` in a
checkout, `fourcast` when installed (where this file sits inside the package).
"""

from __future__ import annotations

import asyncio
import importlib
import logging.config

from alembic import context
from sqlalchemy.engine import Connection

config = context.config
PACKAGE = config.attributes.get("package", "app")
Settings = importlib.import_module(f"{PACKAGE}.settings").Settings
create_engine = importlib.import_module(f"{PACKAGE}.store.db").create_engine
target_metadata = importlib.import_module(f"{PACKAGE}.store.models").Base.metadata

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    return url or Settings().resolved_database_url


def configure(connection: Connection | None = None, url: str | None = None) -> None:
    dialect = connection.dialect.name if connection is not None else url or ""
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place: batch mode recreates the table instead.
        render_as_batch=dialect.startswith("sqlite"),
        compare_type=True,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    """Emit SQL for a DBA to run (`alembic upgrade head --sql`)."""
    configure(url=database_url())
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    configure(connection=connection)
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds tables; with foreign keys enforced, dropping a parent table would
        # delete its children in cascade. The pragma only takes outside a transaction: here,
        # before the migrations' own begins. Checked afterwards instead.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    try:
        with context.begin_transaction():
            context.run_migrations()
        if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
            raise RuntimeError("a migration left rows whose foreign keys match nothing")
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")


async def _run_async() -> None:
    engine = create_engine(database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
