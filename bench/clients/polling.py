"""How each server is polled (short and long polls): the requests a poller sends and what it reads
from the answers."""

from __future__ import annotations

from typing import Any

import orjson

from bench.clients.http import HTTPClient, get_request
from bench.clients.target import BENCH_TYPE, Target


class PollAdapter:
    """How one server is polled: fourcast and the floor by `?after=cursor[&wait=25]` answered with
    `{"events", "next"}`; Nchan by `If-Modified-Since`/`If-None-Match` from the last answer's
    `Last-Modified`/`Etag`, on `/sub` (long poll: every pending message, one per line) or `/poll`
    (interval poll: 304, or one message)."""

    def __init__(self, who: Target, long: bool) -> None:
        self.who = who
        self.long = long
        self.nchan = who.nchan
        self.headers = who.header_lines()
        self.ok = (200, 304, 408) if self.nchan else (200,)
        if self.nchan:
            self.path = f"/sub?id={who.channel}" if long else f"/poll?id={who.channel}"
        else:
            self.path = who.events_path

    def first(self) -> bytes:
        """The request that finds where a poller starts."""
        port = self.who.port
        if self.nchan:
            return get_request(port, self.path)
        return get_request(port, self.path + "?limit=1", self.headers)

    def request(self, cursor: Any) -> bytes:
        port = self.who.port
        if self.nchan:
            modified, etag = cursor
            return get_request(
                port, self.path, f"If-Modified-Since: {modified}\r\nIf-None-Match: {etag}\r\n"
            )
        q = f"{self.path}?after={cursor}" + ("&wait=25" if self.long else "")
        return get_request(port, q, self.headers)

    def answer(
        self, c: HTTPClient, status: int, body: bytes, cursor: Any
    ) -> tuple[Any, list[dict[str, Any]], bool]:
        """(next cursor, the events' data, reset?) from one answer."""
        if self.nchan:
            if status != 200:
                return cursor, [], False
            modified, etag = c.header(b"last-modified"), c.header(b"etag")
            nxt = (modified.decode(), etag.decode()) if modified and etag else cursor
            return nxt, [orjson.loads(line) for line in body.split(b"\n") if line], False
        msg = orjson.loads(body)
        events = [e["data"] for e in msg["events"] if e.get("type") == BENCH_TYPE]
        return msg["next"], events, bool(msg.get("reset"))
