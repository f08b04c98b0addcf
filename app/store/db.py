"""Engine and session creation for the two supported databases.

SQLite (the default, one machine) and PostgreSQL (deployments) are chosen by URL. SQLite is tuned so
that an acknowledged commit is on disk: the bus acknowledges a publish only after its journal commit,
so `synchronous=FULL` is what makes "acknowledged means it survives a crash" true under WAL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from asyncpg import exceptions as pg_errors
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

SQLITE_PREFIX = "sqlite+aiosqlite://"
POSTGRES_PREFIX = "postgresql+asyncpg://"
BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite writer waits for another connection's write lock before failing."""
PG_TIMEOUT = 5.0
"""Seconds before a PostgreSQL statement, connection or pool checkout fails."""


def create_engine(url: str, *, echo: bool = False, **kwargs: Any) -> AsyncEngine:
    """An async engine for `sqlite+aiosqlite://` or `postgresql+asyncpg://`, configured for durability."""
    if url.startswith(SQLITE_PREFIX):
        return _sqlite_engine(url, echo=echo, **kwargs)
    if url.startswith(POSTGRES_PREFIX):
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_timeout", PG_TIMEOUT)
        connect_args = kwargs.pop("connect_args", {})
        # A hung or unreachable server fails a statement after PG_TIMEOUT instead of holding the
        # group commit (and every publish behind it) forever: the publishes get 503.
        connect_args.setdefault("command_timeout", PG_TIMEOUT)
        connect_args.setdefault("timeout", PG_TIMEOUT)
        return _create_async_engine(url, echo=echo, connect_args=connect_args, **kwargs)
    raise ValueError(f"database URL must start with {SQLITE_PREFIX} or {POSTGRES_PREFIX}")


def _sqlite_engine(url: str, *, echo: bool, **kwargs: Any) -> AsyncEngine:
    database = make_url(url).database
    in_memory = not database or database == ":memory:" or database.startswith("file::memory:")
    if not in_memory and database is not None and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("timeout", BUSY_TIMEOUT_MS / 1000)
    engine = _create_async_engine(url, echo=echo, connect_args=connect_args, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                # WAL lets readers proceed while the group committer writes. WAL is stored in the
                # file: only the first connection (under the migration lock) has to switch it,
                # and switching needs the file to itself, which a busy wait does not give.
                cursor.execute("PRAGMA journal_mode")
                if str(cursor.fetchone()[0]).lower() != "wal":
                    cursor.execute("PRAGMA journal_mode=WAL")
            # FULL (not NORMAL): under WAL, NORMAL skips the fsync at each commit, so the last
            # acknowledged commits could vanish in an OS crash or power loss; FULL makes them stick.
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    return engine


_AWAY: tuple[type[Exception], ...] = (
    OSError,  # refused, reset, unreachable; also asyncpg's raw connect errors
    TimeoutError,  # asyncpg's command or connect timeout: a hung server
    sa_exc.OperationalError,  # SQLite locked, full, read-only, I/O error; a lost connection
    sa_exc.InterfaceError,  # a closed connection
    sa_exc.TimeoutError,  # no connection from the pool in time
    pg_errors.PostgresConnectionError,  # class 08: the connection failed or is gone
    pg_errors.OperatorInterventionError,  # class 57: shutting down, starting up, cancelled
    pg_errors.InsufficientResourcesError,  # class 53: disk full, out of memory, no connections
    pg_errors.InterfaceError,  # asyncpg's own: a closed connection
)


DATABASE_ERRORS: tuple[type[Exception], ...] = (*_AWAY, sa_exc.DBAPIError)
"""Where to look for `database_unavailable` (the wrapper of every driver error included)."""

_DATABASE_LAYER = ("sqlalchemy", "asyncpg", "aiosqlite", "sqlite3", __package__ or "app.store")
"""Packages whose code is the database layer: an OSError or TimeoutError raised in them (asyncpg
connects and times out with the builtin ones) is the database's; elsewhere it is not."""


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database is away (down, unreachable, hung, locked, full, read-only)
    rather than that a statement is wrong: the request may succeed later, so the client gets 503
    and Retry-After, as a publish does, not a 500. The causes are looked at too: SQLAlchemy wraps
    a driver's error, and the asyncpg dialect wraps asyncpg's in a generic DBAPI error. A bare
    OSError or TimeoutError counts only if raised through the database layer: a file, a socket to
    anything else, or an SSE send timing out is an internal error, told as itself."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, _AWAY) and raised_by_database(seen):
            return True
        if isinstance(seen, sa_exc.DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.orig if isinstance(seen, sa_exc.DBAPIError) else seen.__cause__
    return False


def raised_by_database(exc: BaseException) -> bool:
    """Whether `exc` is SQLAlchemy's or a driver's, or came up through their code (its
    traceback passes through the database layer). Looked at only once something failed."""
    if isinstance(exc, (sa_exc.SQLAlchemyError, pg_errors.PostgresError, pg_errors.InterfaceError)):
        return True
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if any(module == p or module.startswith(p + ".") for p in _DATABASE_LAYER):
            return True
        tb = tb.tb_next
    return False


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for services; objects stay usable after commit (no lazy reloads in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def dialect_name(bind: AsyncEngine | AsyncSession) -> str:
    """`sqlite` or `postgresql`: the few statements that differ (upserts) switch on this."""
    if isinstance(bind, AsyncSession):
        return bind.get_bind().dialect.name
    return bind.dialect.name


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT of the session's dialect, which has `on_conflict_do_nothing` / `_do_update`
    (the upserts: SQLite's and PostgreSQL's take the same arguments)."""
    module = postgresql if dialect_name(session) == "postgresql" else sqlite
    return module.insert(table)
