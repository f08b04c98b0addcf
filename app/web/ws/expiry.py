"""When a `/ws` connection's credential ends: it expires, or the person is signed out.

Either closes the socket with 4401 (the client refreshes its token and reconnects); the `auth`
and `refresh` ops re-arm the deadline for their new token.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import TYPE_CHECKING

from .codes import CLOSE_EXPIRED

if TYPE_CHECKING:
    from .connection import Connection


def arm_expiry(conn: Connection) -> None:
    """Close with 4401 when the credential expires, or when the person is signed out."""
    if conn.expiry is not None:
        conn.expiry.cancel()
        conn.expiry = None
    expires_at = conn.principal.expires_at
    if expires_at is not None:
        delay = max(0.0, expires_at - time.time())
        conn.expiry = asyncio.get_running_loop().call_later(delay, _expired, conn)
    if conn.unwatch is None and conn.principal.is_user:
        revoked = partial(_revoked, conn)
        conn.unwatch = conn.services.tokens.revocations.watch(conn.principal.id, revoked)
        # A sign-out may have landed since the handshake's credential was checked.
        asyncio.get_running_loop().call_soon(revoked)


def _expired(conn: Connection) -> None:
    conn.closing = (CLOSE_EXPIRED, "credentials expired: refresh, then reconnect")
    conn.sink.close()


def _revoked(conn: Connection) -> None:
    principal = conn.principal
    if conn.services.tokens.revocations.is_revoked(principal.id, principal.issued_at):
        conn.closing = (CLOSE_EXPIRED, "signed out")
        conn.sink.close()
