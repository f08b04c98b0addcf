"""A fan-out's writes straight to a connection's file descriptor.

A transport's `write` keeps a buffer of its own: each call appends the bytes to it, writes them
out and empties it again. For one event fanned out to many readers, that bookkeeping is a
measurable share of each delivery (bench/README.md). So where the transport is a plain socket
(no TLS) of uvloop's or asyncio's, the fan-out writes with `os.write` on the socket's file
descriptor instead, whenever the transport holds no bytes of its own (they would be overtaken:
otherwise it writes through the transport, behind them). A write the socket takes only in part
hands the rest to the transport. The transport's flow control is unchanged: its protocol, and
so the fan-out's gate, pauses at its high-water mark as before.
"""

from __future__ import annotations

import importlib
from typing import Any

NO_FD = -1


def _plain_transports() -> tuple[type, ...]:
    """uvloop's TCP and Unix socket transports (uvloop is optional) and asyncio's own: the
    ones whose `write` is a write to the socket, with a buffer only for what it did not take."""
    names = [
        ("uvloop.loop", "TCPTransport"),
        ("uvloop.loop", "UnixTransport"),
        ("asyncio.selector_events", "_SelectorSocketTransport"),
    ]
    found = []
    for module, name in names:
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


PLAIN = _plain_transports()


def fan_out_fd(transport: Any) -> int:
    """The file descriptor a fan-out may write to while its gate is open and the transport
    holds nothing; NO_FD for any other transport (TLS, a test double): its `write` is used."""
    if type(transport) not in PLAIN or transport.is_closing():
        return NO_FD
    sock = transport.get_extra_info("socket")
    if sock is None:
        return NO_FD
    fd: int = sock.fileno()
    return fd
