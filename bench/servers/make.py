"""Which server class a scenario spec names, and making one."""

from __future__ import annotations

from bench.servers.fourcast import Server
from bench.servers.peers import FloorServer, NchanServer
from bench.servers.process import Process

SERVERS: dict[str, type[Process]] = {"fourcast": Server, "nchan": NchanServer, "floor": FloorServer}


def make_server(spec: dict[str, object], **common: object) -> Process:
    """The server a scenario spec names (`server`, and for fourcast `launch` and `backend`)."""
    kind = str(spec.get("server", "fourcast"))
    if kind == "fourcast":
        return Server(
            launch=str(spec.get("launch", "python -m app")),
            backend=str(spec.get("backend", "memory")),
            **common,  # type: ignore[arg-type]
        )
    common.pop("source", None)
    common.pop("env", None)
    return SERVERS[kind](**common)  # type: ignore[arg-type]
