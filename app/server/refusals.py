"""The answers written straight to a socket the protocol refuses or cuts short (deadlines.py).

Prebuilt once: each is sent when a connection is past a bound, where building an answer through
the app would spend what the bound protects.
"""

from __future__ import annotations

_REFUSAL_BODY = (
    b'{"error":{"code":"too_many_connections","message":"server is at its socket limit"}}'
)
REFUSAL = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n" + (
    b"connection: close\r\nretry-after: 1\r\ncontent-length: %d\r\n\r\n%b"
    % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)
_PIPELINED_BODY = (
    b'{"error":{"code":"too_many_pipelined","message":"too many requests pipelined on one '
    b'connection before their answers were read"}}'
)
PIPELINED = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n" + (
    b"connection: close\r\ncontent-length: %d\r\n\r\n%b" % (len(_PIPELINED_BODY), _PIPELINED_BODY)
)
_HEAD_BODY = b'{"error":{"code":"head_too_large","message":"request head too large"}}'
HEAD_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\n" + (
    b"content-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%b"
    % (len(_HEAD_BODY), _HEAD_BODY)
)

_RESTARTING_BODY = b'{"error":{"code":"unavailable","message":"server is restarting"}}'
_RESTARTING = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n" + (
    b"retry-after: 2\r\ncontent-length: %d\r\n" % len(_RESTARTING_BODY)
)
RESTARTING = _RESTARTING + b"\r\n" + _RESTARTING_BODY
"""A request queued behind the one being answered at shutdown (closing.py); the connection
stays open for the next such answer."""
RESTARTING_LAST = _RESTARTING + b"connection: close\r\n\r\n" + _RESTARTING_BODY

__all__ = ["HEAD_TOO_LARGE", "PIPELINED", "REFUSAL", "RESTARTING", "RESTARTING_LAST"]
