"""How many sockets a server may hold open: the bound asked for, within `ulimit -n`."""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)

DESCRIPTOR_RESERVE = 200
"""Descriptors kept free for what is not a client socket: the database, logs, the listener."""


def socket_bound(wanted: int) -> int:
    """`wanted`, lowered to fit the process's descriptor limit (`ulimit -n`) with a reserve."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    room = max(16, soft - DESCRIPTOR_RESERVE)
    if wanted > room:
        log.warning(
            "max_open_sockets %d lowered to %d to fit the descriptor limit (ulimit -n %d)",
            wanted,
            room,
            soft,
        )
        return room
    return wanted


__all__ = ["DESCRIPTOR_RESERVE", "socket_bound"]
