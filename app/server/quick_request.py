"""One GET in the quick lane (app/server/quick.py), and the response written for it."""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

if TYPE_CHECKING:
    from .quick import QuickLaneProtocol

access_log = logging.getLogger("uvicorn.access")
ACCESS_LINE = '%s - "%s %s HTTP/%s" %d'  # uvicorn's

_quoted: dict[str, str] = {}
QUOTED_KEPT = 1024
_heads: dict[tuple[int, bytes], bytes] = {}
_heads_for: list[object] = [None]


def _head(defaults: list[tuple[bytes, bytes]], status: int, headers: bytes) -> bytes:
    """Status line, uvicorn's default headers and the app's, built once per second: uvicorn
    replaces its default-header list (the date) every second, and that list is the cache key."""
    if _heads_for[0] is not defaults:
        _heads.clear()
        _heads_for[0] = defaults
    head = _heads.get((status, headers))
    if head is None:
        parts = [STATUS_LINE[status]]
        for name, value in defaults:
            parts += (name, b": ", value, b"\r\n")
        parts.append(headers)
        head = _heads[(status, headers)] = b"".join(parts)
    return head


class QuickRequest:
    """One GET in the quick lane. While open it stands in for uvicorn's request-response cycle
    (the protocol reads `response_complete`, `disconnected`, `keep_alive`, `message_event`), so
    uvicorn's own pipelining, disconnect and shutdown handling keep working unchanged."""

    __slots__ = (
        "body",
        "disconnected",
        "headers",
        "http_version",
        "keep_alive",
        "more_body",
        "on_disconnect",
        "path",
        "protocol",
        "query",
        "response_complete",
    )

    def __init__(
        self,
        protocol: QuickLaneProtocol,
        path: str,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        http_version: str = "1.1",
    ) -> None:
        self.protocol = protocol
        self.path = path
        self.query = query
        self.headers = headers
        """Lower-cased names, as the client sent them."""
        self.keep_alive = keep_alive
        self.http_version = http_version
        self.response_complete = False
        self.disconnected = False
        self.more_body = True
        self.body = b""
        self.on_disconnect: Callable[[], None] | None = None
        """Called once if the client goes away before the response is written."""

    @property
    def message_event(self) -> QuickRequest:
        return self  # uvicorn calls `cycle.message_event.set()` on news about the request

    def set(self) -> None:
        if self.disconnected and not self.response_complete and self.on_disconnect is not None:
            callback, self.on_disconnect = self.on_disconnect, None
            callback()

    def respond(self, status: int, headers: bytes, body: bytes) -> None:
        """Write the whole response: `headers` are complete `name: value\\r\\n` lines; the date,
        server, length and connection headers are added here, as uvicorn would."""
        if self.response_complete:
            return
        self.response_complete = True
        self.on_disconnect = None
        protocol = self.protocol
        if self.disconnected or protocol.transport.is_closing():
            return
        head = _head(protocol.server_state.default_headers, status, headers)
        close = b"" if self.keep_alive else b"connection: close\r\n"
        protocol.transport.write(
            b"%scontent-length: %d\r\n%s\r\n%s" % (head, len(body), close, body)
        )
        if protocol.access_log:
            self._log_access(status)
        if not self.keep_alive:
            protocol.transport.close()
        protocol.on_response_complete()

    def _log_access(self, status: int) -> None:
        # The line uvicorn would write (`get_client_addr`, `get_path_with_query_string`), so log
        # processing and redaction see no difference; the quoted path is kept per path. The
        # record is made as `Logger.info` makes it, less the walk up the stack for the caller
        # (a fixed place is given).
        if not access_log.isEnabledFor(logging.INFO):
            return
        protocol = self.protocol
        client = protocol.client
        full = protocol.root_path + self.path if protocol.root_path else self.path
        path = _quoted.get(full)
        if path is None:
            if len(_quoted) >= QUOTED_KEPT:
                _quoted.clear()  # the paths come from clients: the cache is bounded
            path = _quoted[full] = urllib.parse.quote(full)
        if self.query:
            path = f"{path}?{self.query.decode('ascii')}"
        args = (
            f"{client[0]}:{client[1]}" if client else "",
            "GET",
            path,
            self.http_version,
            status,
        )
        access_log.handle(
            access_log.makeRecord(
                access_log.name, logging.INFO, __file__, 0, ACCESS_LINE, args, None, "_log_access"
            )
        )
