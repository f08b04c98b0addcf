"""Short and long polling: `GET .../events?after=` in a loop, following the answer's `next`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from ..errors import error_from_response
from ..events import Event
from .base import Cursor, Dropped, Item, Opened, Options, ResetSignal, channel_path, refused

UNHELD = 0.5
"""A waited poll answered with no events before this share of its wait was not held by the
server (one held to its end answers after all of it)."""


class PollTransport:
    """Short polls every `poll_interval` seconds; a long poll holds each request open for up to
    `long_poll_wait` seconds, after a first request that answers at once."""

    def __init__(self, options: Options, *, long: bool) -> None:
        self.options = options
        self.long = long
        self.name = "longpoll" if long else "shortpoll"

    async def stream(self, channel: str, cursor: str | None) -> AsyncGenerator[Item, None]:
        url = self.options.base_url + channel_path(channel, "events")
        wait = max(1, round(self.options.long_poll_wait)) if self.long else 0
        timeout = httpx.Timeout(
            self.options.connect_timeout, read=wait + self.options.connect_timeout
        )
        opened = False
        loop = asyncio.get_running_loop()
        while True:
            params: dict[str, Any] = {"limit": self.options.poll_limit}
            if cursor is not None:
                params["after"] = cursor
            waited = bool(wait and opened)
            if waited:  # the first request answers at once: it proves the connection
                params["wait"] = wait
            asked = loop.time()
            try:
                response = await self.options.http.get(
                    url, params=params, headers=self.options.headers, timeout=timeout
                )
            except httpx.HTTPError as exc:
                raise Dropped(f"poll failed: {exc or type(exc).__name__}") from None
            if response.status_code != 200:
                error = error_from_response(
                    response.status_code, response.content, response.headers
                )
                if error.retryable:
                    raise refused(error)
                raise error
            try:
                body = response.json()
                page = [Event.from_json(obj) for obj in body.get("events") or []]
                reset, following = bool(body.get("reset")), str(body["next"])
            except (ValueError, AttributeError, KeyError, TypeError):
                # A 200 that is no poll page (a proxy's or a portal's): dropped, and asked again.
                raise Dropped("the answer is not a poll page") from None
            if not opened:
                opened = True
                yield Opened()
            if reset:
                yield ResetSignal()
            for event in page:
                yield event
            events = page
            cursor = following
            yield Cursor(cursor)
            if not self.long and len(events) < self.options.poll_limit:
                await self.options.sleep(self.options.poll_interval)
            elif waited and not events and loop.time() - asked < wait * UNHELD:
                # Asked to wait, answered at once with nothing (a server shutting down, or a
                # proxy that ignores `wait`): poll as a short poller would, not in a tight loop.
                await self.options.sleep(self.options.poll_interval)
