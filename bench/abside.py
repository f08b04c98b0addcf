"""One side of `python -m bench ab`: a server pinned to core 0, started as `make bench` starts it
(fourcast of a revision, as `python -m app` or plain uvicorn, in memory or on Redis; or a peer:
the floor app or Nchan), and whom its readers read as."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.clients.abreaders import CHANNELS
from bench.clients.target import Target
from bench.procstat import ROOT, tree, tree_seconds
from bench.servers import export_head, make_server
from bench.servers.process import Process

SERVERS = ("fourcast", "floor", "nchan")
LAUNCHES = {"app": "python -m app", "uvicorn": "uvicorn"}
"""`ab`'s names for fourcast's launches, and `make bench`'s."""

AB_SETTINGS = {
    "FOURCAST_PUBLISH_RATE": "1000000",
    "FOURCAST_PUBLISH_BURST": "1000000",
    # The readers read and discard: they answer no ping, so none is sent (a reader that left a
    # ping unanswered was cut off after 45 s, and its side then cost less). Plain uvicorn sends
    # its own pings: its `--ws-ping-interval`, read from the environment.
    "FOURCAST_HEARTBEAT": "3600",
    "UVICORN_WS_PING_INTERVAL": "3600",
}
"""What `ab` sets on a fourcast server besides `make bench`'s settings."""

PEER_CHANNEL = "ab"
"""What a peer's readers read (the peers have no rooms and no authentication)."""


@dataclass
class Side:
    """What serves one side, and as whom its readers read (`auth`: fourcast's only)."""

    server: str = "fourcast"
    source: str = "worktree"
    """fourcast's code: a git revision, or the work tree."""
    launch: str = "app"
    backend: str = "memory"
    auth: str = "key"
    process: Process | None = None
    pids: list[int] = field(default_factory=list)

    def start(self) -> Side:
        if self.server == "fourcast":
            where = ROOT if self.source == "worktree" else export_head(self.source)
            spec = {"launch": LAUNCHES[self.launch], "backend": self.backend}
            self.process = make_server(spec, core=0, source=where, env=AB_SETTINGS)
        else:
            self.process = make_server({"server": self.server}, core=0)
        self.process.start()
        self.pids = tree(self.process.pid)  # nginx: its master and its worker
        return self

    def cpu_seconds(self) -> float:
        return tree_seconds(self.pids)[0]

    def target(self) -> Target:
        """Where its readers read, and the credential its publisher uses (the API key)."""
        assert self.process is not None
        fourcast = self.server == "fourcast"
        channel = CHANNELS[self.auth] if fourcast else PEER_CHANNEL
        auth = self.auth if fourcast else "key"
        return Target(self.server, self.process.port, channel, auth, self.process.api_key)

    def describe(self) -> str:
        if self.server != "fourcast":
            return self.server
        return f"{self.source} ({LAUNCHES[self.launch]}, {self.auth}, {self.backend})"

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
