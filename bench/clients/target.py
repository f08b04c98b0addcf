"""Which server a client talks to and as whom (`Target`), and signing in a guest to get a credential."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from orjson import loads

from bench.clients.http import HTTPClient

BENCH_TYPE = "bench"  # the type of the events the bench publishes (others: presence.join ...)


@dataclass
class Target:
    """Which server a client talks to and as whom: the per-server adapters key off this.

    `server`: fourcast | nchan | floor. `credential`: for fourcast, the API key (`auth` "key",
    sent as a bearer token) or a guest's session token (`auth` "guest", sent as the session
    cookie, as the chat page's browser does). The peers take no credentials.
    """

    server: str
    port: int
    channel: str
    auth: str = "key"
    credential: str = ""

    @property
    def nchan(self) -> bool:
        return self.server == "nchan"

    def headers(self) -> dict[str, str]:
        if self.server != "fourcast" or not self.credential:
            return {}
        if self.auth == "guest":
            return {"Cookie": f"{SESSION_COOKIE}={self.credential}"}
        return {"Authorization": f"Bearer {self.credential}"}

    def header_lines(self) -> str:
        return "".join(f"{k}: {v}\r\n" for k, v in self.headers().items())

    def with_credential(self, credential: str) -> Target:
        return Target(self.server, self.port, self.channel, self.auth, credential)

    # Paths
    @property
    def stream_path(self) -> str:
        return f"/sub?id={self.channel}" if self.nchan else f"/api/channels/{self.channel}/stream"

    @property
    def events_path(self) -> str:
        return f"/api/channels/{self.channel}/events"

    @property
    def publish_path(self) -> str:
        return f"/pub?id={self.channel}" if self.nchan else self.events_path


SESSION_COOKIE = "fourcast_session"


async def guest_token(port: int, name: str) -> str:
    """A guest session, as the chat page signs in: `POST /api/session` -> its token."""
    body = orjson.dumps({"name": name})
    status, resp = await HTTPClient.once(
        port,
        (
            f"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body,
    )
    if status != 201:
        raise RuntimeError(f"POST /api/session: {status} {resp[:200]!r}")
    return str(loads(resp)["token"])
