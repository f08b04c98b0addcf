"""A start-up that cannot use its database ends with one line saying which database and why.

Starlette hands uvicorn the formatted traceback of a failed lifespan, and uvicorn logs it: for a
database that is down, some 160 lines ending in `ConnectionRefusedError`, with the URL nowhere.
So the start-up's database work raises `StartupFailed` after logging one line (the URL with its
password hidden, and the innermost cause), and the lifespan's failure message is emptied for it:
uvicorn then adds only its own "Application startup failed. Exiting." and exits non-zero, on
either launch path.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

from asyncpg import PostgresError
from asyncpg import exceptions as pg_errors
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from starlette.types import Message, Send

from .store.db import raised_by_database
from .store.locks import JournalInUse

log = logging.getLogger(__name__)

_DATABASE_ERRORS = (
    OSError,
    TimeoutError,
    SQLAlchemyError,
    PostgresError,
    pg_errors.InterfaceError,
)


class StartupFailed(RuntimeError):
    """Start-up cannot go on, for a reason already logged in one line."""


def hidden(url: str) -> str:
    """The URL with its password shown as ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses: say nothing of it that may hold a secret
        return "(the configured FOURCAST_DATABASE_URL)"


def cause(exc: BaseException) -> str:
    """The innermost error behind `exc` (the driver's, not its wrappers'), on one line."""
    seen: BaseException = exc
    for _ in range(8):
        inner: BaseException | None = seen.orig if isinstance(seen, DBAPIError) else None
        inner = inner or seen.__cause__ or seen.__context__
        if not isinstance(inner, BaseException):
            break
        seen = inner
    text = " ".join(str(seen).split()) or "(no message)"
    return f"{type(seen).__name__}: {text}"


@contextlib.contextmanager
def database_needed(url: str) -> Iterator[None]:
    """Turn a database that cannot be used during the body into one log line and StartupFailed.
    (On Redis a node also starts with its database away if it need not migrate: the archive
    catches up later.)"""
    try:
        yield
    except JournalInUse as exc:  # already told, in one line, by whoever refused
        raise StartupFailed(str(exc)) from None
    except _DATABASE_ERRORS as exc:
        if not raised_by_database(exc):
            raise  # a file, a socket to something else: told as itself, not as the database
        line = f"cannot start: the database {hidden(url)} cannot be used: {cause(exc)}"
        log.critical("%s", line)
        raise StartupFailed(line) from None


def quiet_told_failures(send: Send) -> Send:
    """The lifespan's `send`, with the traceback of a StartupFailed left out (it was told)."""

    async def quiet(message: Message) -> None:
        told = isinstance(sys.exc_info()[1], StartupFailed)  # sent while Starlette handles it
        if message["type"] == "lifespan.startup.failed" and told:
            message = {**message, "message": ""}
        await send(message)

    return quiet
