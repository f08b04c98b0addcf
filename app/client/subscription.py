"""One channel followed across drops: resume by cursor, de-duplicate, back off, step down.

The loop mirrors the browser client (static/js/fourcast.js): the start cursor is asked for first,
so even a drop before the first event loses nothing; every reconnect resumes after the last event
seen, on whichever transport comes next; a transport that fails before it ever delivered makes
`auto` step down to the next one, unless the whole server is away (then it waits and retries).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx

from .errors import TransportDisabled, error_from_response
from .events import Event, Reset, Status
from .transports import TRANSPORTS, make_transport
from .transports.base import Cursor, Dropped, Opened, ResetSignal, channel_path

if TYPE_CHECKING:
    from .client import Client

SEEN_IDS = 2048
"""Event ids remembered to drop the overlap of a replay (cursors are opaque: no comparison)."""
STABLE_AFTER = 10.0
"""A connection that delivered this many seconds starts the next backoff from the beginning."""


class Subscription:
    """`async for event in client.subscribe(channel)`: an endless iterator of Events."""

    def __init__(
        self,
        client: Client,
        channel: str,
        *,
        after: str | None,
        transport: str,
        on_reset: Callable[[Reset], Any] | None = None,
        on_status: Callable[[Status], Any] | None = None,
    ) -> None:
        self.client = client
        self.channel = channel
        self.cursor: str | None = after
        """Where to resume: the last event's id, or a poll's `next`."""
        self.mode = transport
        self.transport = TRANSPORTS[0] if transport == "auto" else transport
        """The transport in use (or being tried)."""
        self.resets = 0
        self.attempts = 0
        """Connections tried (one per transport attempt, after any backoff)."""
        self.on_reset = on_reset
        self.on_status = on_status
        self.backoff = client.new_backoff()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._iterator: AsyncGenerator[Event, None] | None = None
        self._closed = False
        self._reader: asyncio.Task[Any] | None = None
        """The task waiting in __anext__, if any: aclose() from another task interrupts it."""
        self._interrupted = False
        self._step_done = asyncio.Event()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        if self._reader is not None:
            raise RuntimeError("this subscription is already being iterated by another task")
        if self._iterator is None:
            self._iterator = self._run()
        if self._closed:
            await self._iterator.aclose()
            raise StopAsyncIteration
        task = asyncio.current_task()
        self._reader, self._interrupted = task, False
        self._step_done.clear()
        try:
            return await anext(self._iterator)
        except asyncio.CancelledError:
            # aclose()'s cancel ends the iteration; anyone else's is still a cancel.
            if self._interrupted and task is not None and task.uncancel() == 0:
                raise StopAsyncIteration from None
            raise
        finally:
            self._reader = None
            self._step_done.set()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop following the channel and close its connection; an `async for` over it in another
        task ends (without an error) and this returns once the connection is closed.

        A generator waiting for its next event cannot be closed from another task (Python raises
        "already running"), so the task waiting in it is cancelled and __anext__ turns that
        cancel into the end of the iteration."""
        self._closed = True
        reader = self._reader
        if reader is asyncio.current_task():
            return  # called from on_status/on_reset: __anext__ ends at its next step
        if reader is not None:
            if not self._interrupted:
                self._interrupted = True
                reader.cancel()
            await self._step_done.wait()
        if self._iterator is not None:
            await self._iterator.aclose()

    def _status(self, status: Status) -> None:
        if self.on_status is not None:
            self.on_status(status)

    async def _run(self) -> AsyncGenerator[Event, None]:
        order = TRANSPORTS if self.mode == "auto" else (self.mode,)
        tier = 0
        skip: set[str] = set()
        clock = self.client.clock
        while not self._closed:
            if self.cursor is None:
                await self._resolve_start()
                continue
            name = order[tier]
            self.transport = name
            self.attempts += 1
            self.client.stats["connects"] += 1
            self._status(Status("connecting", name))
            useful_since: float | None = None
            transport = make_transport(name, self.client.options)
            stream = transport.stream(self.channel, self.cursor)
            try:
                async for item in stream:
                    if isinstance(item, Event):
                        if item.id is not None:
                            if item.id in self._seen:
                                continue
                            self._remember(item.id)
                            self.cursor = item.id
                        yield item
                    elif isinstance(item, Cursor):
                        self.cursor = item.value
                    elif isinstance(item, Opened):
                        useful_since = clock()
                        self._status(Status("live", name))
                    elif isinstance(item, ResetSignal):
                        self.resets += 1
                        if item.cursor is not None:
                            self.cursor = item.cursor
                        self._seen.clear()
                        if self.on_reset is not None:
                            self.on_reset(Reset(self.channel, name))
                raise Dropped("the connection ended")
            except TransportDisabled as exc:
                if self.mode != "auto" or tier == len(order) - 1:
                    raise
                skip.add(name)
                tier = self._next_tier(order, tier, skip)
                self._status(Status("retrying", name, f"{exc.message}: stepping down"))
                continue
            except Dropped as drop:
                reason, min_delay, busy = drop.reason, drop.min_delay, drop.busy
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()
            if useful_since is not None and clock() - useful_since >= STABLE_AFTER:
                self.backoff.reset()
            # A transport that never delivered steps down, unless the server said "later".
            if self.mode == "auto" and useful_since is None and not busy and tier < len(order) - 1:
                transports = await self._server_transports()
                if transports is not None:  # the server answers: this transport is the problem
                    skip.update(n for n, on in transports.items() if on is False)
                    tier = self._next_tier(order, tier, skip)
                    self._status(Status("retrying", name, f"{reason}: stepping down"))
                    continue
            delay = self.backoff.next(min_delay)
            self.client.stats["retries"] += 1
            self._status(Status("retrying", name, reason, delay))
            await self.client.sleep(delay)

    @staticmethod
    def _next_tier(order: tuple[str, ...], tier: int, skip: set[str]) -> int:
        tier += 1
        while tier < len(order) - 1 and order[tier] in skip:
            tier += 1
        return tier

    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)

    async def _resolve_start(self) -> None:
        """Ask where "now" is, so a live-only subscription still resumes without a gap."""
        options = self.client.options
        url = options.base_url + channel_path(self.channel, "events")
        try:
            response = await options.http.get(
                url, params={"limit": 1}, headers=options.headers, timeout=options.connect_timeout
            )
        except httpx.HTTPError as exc:
            reason, min_delay = f"cannot reach the server: {exc or type(exc).__name__}", 0.0
        else:
            if response.status_code == 200:
                try:
                    self.cursor = str(response.json()["next"])
                    return
                except (ValueError, KeyError, TypeError):  # a proxy's page: asked again
                    reason, min_delay = "the answer is not a poll page", 0.0
            else:
                error = error_from_response(
                    response.status_code, response.content, response.headers
                )
                if not error.retryable:
                    raise error
                reason, min_delay = str(error), error.retry_after or 0.0
        delay = self.backoff.next(min_delay)
        self.client.stats["retries"] += 1
        self._status(Status("retrying", self.transport, reason, delay))
        await self.client.sleep(delay)

    async def _server_transports(self) -> dict[str, bool] | None:
        """The server's transports from /api/info, or None when it does not answer."""
        options = self.client.options
        try:
            response = await options.http.get(
                options.base_url + "/api/info", timeout=options.connect_timeout
            )
        except httpx.HTTPError:
            return None
        if response.status_code >= 500:
            return None
        try:
            transports = response.json().get("transports")
        except ValueError:
            return {}
        return transports if isinstance(transports, dict) else {}
