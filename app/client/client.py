"""`Client`: one object for a service that follows channels and publishes to them."""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from .backoff import Backoff
from .errors import FourcastError, UnavailableError, error_from_response
from .events import Event, Reset, Status
from .subscription import Subscription
from .transports import normalize
from .transports.base import Options, channel_path

DEFAULT_URL = "http://127.0.0.1:8000"
CURSOR_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))
"""Cursors are opaque, but printable ASCII: they travel in a header, a query and JSON."""


def sendable_in_header(value: str) -> bool:
    """Whether `value` (a credential, an Idempotency-Key) can be sent as a header value: printable
    ASCII with no space at either end. httpx cannot encode anything else (a UnicodeEncodeError
    from the first request) and refuses a newline as if the network were down (retried)."""
    return bool(value) and value.isascii() and value.isprintable() and value.strip() == value


def checked_base_url(base_url: str) -> str:
    """`base_url` normalised (scheme lower-case, no trailing slash), or ValueError: a URL without
    an http(s) scheme or a host can never be reached, and retrying it would look like an outage."""
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"invalid server URL {base_url!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host or url.query or url.fragment:
        raise ValueError(
            f"invalid server URL {base_url!r}: give http:// or https:// and a host, "
            "as in http://127.0.0.1:8000"
        )
    return str(url).rstrip("/")


def check_seconds(**durations: float) -> None:
    """ValueError unless each is a positive, finite number of seconds: 0 polls in a tight loop,
    NaN or infinity waits for ever (asyncio.sleep(nan) never returns)."""
    for name, value in durations.items():
        if not 0 < value < math.inf:
            raise ValueError(f"{name} must be a positive, finite number of seconds, got {value}")


class Client:
    """An asyncio client of a fourcast server over any of its four transports.

    `api_key` (a service) or `token` (a person's session token from `sign_in`) is sent as
    `Authorization: Bearer`; without either the client is anonymous (it may read `public:`).
    `rng`, `sleep` and `clock` are injectable so backoff can be tested without waiting.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        token: str | None = None,
        transport: str = "auto",
        poll_interval: float = 1.0,
        long_poll_wait: float = 25.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        publish_retry_for: float = 30.0,
        connect_timeout: float = 10.0,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if api_key and token:
            raise ValueError("pass api_key or token, not both")
        if (api_key or token) and not sendable_in_header(api_key or token or ""):
            # Not echoed: it is a secret.
            raise ValueError("the API key or token cannot be sent: use printable ASCII only")
        check_seconds(poll_interval=poll_interval, long_poll_wait=long_poll_wait)
        check_seconds(connect_timeout=connect_timeout)
        if not publish_retry_for >= 0:  # NaN too: its deadline would never pass
            raise ValueError(f"publish_retry_for must be 0 or more, got {publish_retry_for}")
        self.base_url = checked_base_url(base_url)
        self.transport = normalize(transport)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        Backoff(backoff_base, backoff_cap)  # check the figures now, not at the first drop
        self.publish_retry_for = publish_retry_for
        self.rng = rng
        self.sleep = sleep
        self.clock = clock
        self.stats: dict[str, int] = {"connects": 0, "retries": 0, "publish_attempts": 0}
        """Counters: connections tried, backoff waits, publish requests sent."""
        self._http = httpx.AsyncClient(timeout=connect_timeout)
        self._credential = api_key or token
        self._poll_interval = poll_interval
        self._long_poll_wait = long_poll_wait
        self._connect_timeout = connect_timeout
        self._subscriptions: weakref.WeakSet[Subscription] = weakref.WeakSet()

    @property
    def options(self) -> Options:
        headers = {"Authorization": f"Bearer {self._credential}"} if self._credential else {}
        return Options(
            base_url=self.base_url,
            headers=headers,
            http=self._http,
            poll_interval=self._poll_interval,
            long_poll_wait=self._long_poll_wait,
            connect_timeout=self._connect_timeout,
        )

    def new_backoff(self) -> Backoff:
        return Backoff(self.backoff_base, self.backoff_cap, self.rng)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the subscriptions still open, then the HTTP connections. A subscription left
        with `break` keeps its connection until closed: the client closes it here rather than
        whenever the garbage collector happens to finalize it."""
        try:
            for subscription in list(self._subscriptions):
                await subscription.aclose()
        finally:
            await self._http.aclose()

    def subscribe(
        self,
        channel: str,
        *,
        after: str | None = None,
        transport: str | None = None,
        on_reset: Callable[[Reset], Any] | None = None,
        on_status: Callable[[Status], Any] | None = None,
    ) -> Subscription:
        """The events of `channel`: with `after`, every event after that cursor; without, from
        now on. Iterate it with `async for`; it resumes by itself after any drop, and raises
        AuthError / ForbiddenError when retrying cannot help. ValueError for an `after` that no
        server issues (one outside printable ASCII could not even be sent as an SSE header)."""
        if after is not None and not CURSOR_CHARS.issuperset(str(after) or " "):
            raise ValueError(
                f"after={after!r} is not a cursor: give an event's id or a poll's next"
            )
        subscription = Subscription(
            self,
            channel,
            after=None if after is None else str(after),
            transport=normalize(transport) if transport else self.transport,
            on_reset=on_reset,
            on_status=on_status,
        )
        self._subscriptions.add(subscription)
        return subscription

    async def publish(
        self,
        channel: str,
        type: str,
        data: Any,
        *,
        ephemeral: bool = False,
        idempotency_key: str | None = None,
        on_retry: Callable[[FourcastError, float], Any] | None = None,
    ) -> Event | None:
        """Publish one event; None when the server accepted but did not forward it (a throttled
        `typing`). Network errors, 429 and 5xx are retried with the same Idempotency-Key for up to
        `publish_retry_for` seconds, so the event is stored once however often it is sent.
        ValueError, before anything is sent, for an `idempotency_key` no header can carry (an empty
        one too: taking it for "none" would publish again on each call the caller meant as one)."""
        if idempotency_key is not None and not sendable_in_header(idempotency_key):
            raise ValueError(
                f"idempotency_key={idempotency_key!r} cannot be sent: use printable ASCII only, not empty"
            )
        key = secrets.token_urlsafe(18) if idempotency_key is None else idempotency_key
        body: dict[str, Any] = {"type": type, "data": data}
        if ephemeral:
            body["ephemeral"] = True
        options = self.options
        headers = {**options.headers, "Idempotency-Key": key}
        url = self.base_url + channel_path(channel, "events")
        backoff = self.new_backoff()
        deadline = self.clock() + self.publish_retry_for
        while True:
            self.stats["publish_attempts"] += 1
            try:
                response = await self._http.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                error: FourcastError = self._unreachable(exc)
            else:
                if response.status_code in (200, 201, 202):
                    answer = response.json()
                    if answer.get("suppressed"):
                        return None
                    return Event.from_json(answer)
                error = error_from_response(
                    response.status_code, response.content, response.headers
                )
                if not error.retryable:
                    raise error
            delay = backoff.next(error.retry_after or 0)
            if self.clock() + delay >= deadline:
                raise error
            if on_retry is not None:
                on_retry(error, delay)
            await self.sleep(delay)

    async def sign_in(self, name: str) -> dict[str, Any]:
        """A guest session (`POST /api/session`): the client then acts as that person. Returns
        `{"token", "user": {"id", "name"}}`."""
        answer = await self._call("POST", "/api/session", 201, json={"name": name})
        self._credential = answer["token"]
        return answer

    async def info(self) -> dict[str, Any]:
        """`GET /api/info`: the server's transports and main limits."""
        return await self._call("GET", "/api/info", 200)

    async def _call(self, method: str, path: str, expected: int, **kwargs: Any) -> dict[str, Any]:
        """One request, not retried: its JSON answer, or the FourcastError (UnavailableError when
        the server cannot be reached, as everywhere else, not httpx's own exception)."""
        try:
            response = await self._http.request(method, self.base_url + path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code != expected:
            raise error_from_response(response.status_code, response.content, response.headers)
        answer: dict[str, Any] = response.json()
        return answer

    def _unreachable(self, exc: httpx.HTTPError) -> UnavailableError:
        reason = exc or exc.__class__.__name__
        return UnavailableError("unreachable", f"cannot reach {self.base_url}: {reason}")
