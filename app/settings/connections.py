"""The settings of connections (part of `Settings`, app/settings/__init__.py)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from .units import KIB, MIB


class ConnectionSettings(BaseSettings):
    """Request deadlines, the socket bound, oversize heads and bodies; the testing echo."""

    http_head_timeout: float = Field(10, gt=0, le=300)
    """Seconds a whole request head has to arrive in, from the connection (or the request's
    first byte on a keep-alive connection); also how long a silent connection stays open."""
    http_body_timeout: float = Field(30, gt=0, le=3600)
    """Seconds a request body has to arrive in, from the end of its head."""
    http_send_timeout: float = Field(30, gt=0, le=3600)
    """Seconds an answer's writing may stay stalled (its client reads nothing), then the socket
    is aborted."""
    max_open_sockets: int = Field(25_000, ge=16)
    """HTTP and WebSocket connections open at once (lowered to fit `ulimit -n`)."""
    http_max_head_bytes: int = Field(64 * KIB, ge=8 * KIB, le=16 * MIB)
    """Bytes a request head (request line and headers) may take; past it, and at most one read
    (256 KiB) later, the client gets a 431 and the connection is closed."""
    http_max_pipelined: int = Field(32, ge=1, le=10_000)
    """Requests a connection may have waiting behind the one being answered (pipelined); one
    more gets a 429 and the connection is closed."""
    body_discard_bytes: int = Field(8 * MIB, ge=0, le=1024 * MIB)
    """Of a too-large request body, how much is read and dropped so the client reads its 413
    on a kept-alive connection; past it the 413 closes the connection."""
    testing_echo: bool = False
    """Mount the `/testing/echo` WebSocket echo (Autobahn|Testsuite); never in production."""
