"""Budgets for every action a client can repeat to make the server publish, fan out or store.

Publishes have their own (shared across nodes) limiter; these cover the rest, per node: each is a
set of token buckets keyed by person, or by client address (IPv6 by /64) for what happens before
or without signing in. Over budget, a `RateLimited` error carries the wait: a 429 with
`Retry-After` over HTTP, an `error` op with `retry_after` on a WebSocket.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ..settings import Settings
from .limits import Clock, TokenBuckets, address_key
from .principal import Principal

NAMES = (
    "subscribe",
    "typing",
    "ticket",
    "signup",
    "room",
    "room_address",
    "read_all",
    "publish_address",
)


@dataclass(slots=True)
class Budgets:
    subscribe: TokenBuckets
    typing: TokenBuckets
    ticket: TokenBuckets
    signup: TokenBuckets
    room: TokenBuckets
    room_address: TokenBuckets
    read_all: TokenBuckets
    publish_address: TokenBuckets

    @classmethod
    def for_settings(cls, s: Settings, clock: Clock = time.monotonic) -> Budgets:
        def buckets(rate: float, burst: int, what: str) -> TokenBuckets:
            return TokenBuckets(rate, burst, s.max_budget_keys, what=what, clock=clock)

        return cls(
            subscribe=buckets(s.subscribe_rate, s.subscribe_burst, "subscribes"),
            typing=buckets(s.typing_rate, s.typing_burst, "typing signals"),
            ticket=buckets(s.ticket_rate, s.ticket_burst, "tickets"),
            signup=buckets(s.signup_rate, s.signup_burst, "sign-ups from this address"),
            room=buckets(s.room_rate, s.room_burst, "rooms created or joined"),
            room_address=buckets(
                s.room_address_rate,
                s.room_address_burst,
                "rooms created or joined from this address",
            ),
            read_all=buckets(s.read_all_rate, s.read_all_burst, "reads from the start"),
            publish_address=buckets(
                s.publish_address_rate, s.publish_address_burst, "publishes from this address"
            ),
        )

    def refused(self) -> dict[str, int]:
        """Takes refused so far, per budget (for /metrics)."""
        return {name: getattr(self, name).refused for name in NAMES}

    def keys(self, name: str) -> float:
        """How many keys the budget `name` keeps a bucket for (for /metrics)."""
        return float(getattr(self, name).keys)


def spend_read_from_start(
    budgets: Budgets, principal: Principal, ip: str, after: int | None
) -> None:
    """A stream or subscribe from the start of a channel (`after` 0) spends a token of its
    reader's read-from-the-start budget, as a poll from the start does: reopening one in a
    loop (anonymously too: the address pays) is refused (429) before the copies add up."""
    if after == 0:
        spend = read_from_start_spender(budgets, principal, ip)
        if spend is not None:
            spend()


def spend_subscribe(
    budgets: Budgets, key: str | None, principal: Principal, ip: str, after: int | None
) -> Callable[[], None]:
    """A subscribe's tokens, both or neither: one of `key`'s subscribe budget (None: not
    counted) and, from the start of a channel, one of the reader's read-from-the-start budget
    (429 over either). Taken once the subscribe's own checks have passed; returns what gives
    them back, for one refused after them (a spent ticket)."""
    if key is not None:
        budgets.subscribe.take_now(key)
    try:
        spend_read_from_start(budgets, principal, ip, after)
    except BaseException:
        if key is not None:
            budgets.subscribe.give_back(key)
        raise
    reader = actor_key(principal, ip) if after == 0 else None

    def give_back() -> None:
        if key is not None:
            budgets.subscribe.give_back(key)
        if reader is not None:
            budgets.read_all.give_back(reader)

    return give_back


def read_from_start_spender(
    budgets: Budgets, principal: Principal, ip: str
) -> Callable[[], None] | None:
    """What a stream or subscribe whose cursor turns out too old or unknown (a reset, read from
    the oldest kept event) spends, as one from 0 does; None for a reader with no budget."""
    actor = actor_key(principal, ip)
    if actor is None:
        return None
    return partial(budgets.read_all.take_now, actor)


def actor_key(principal: Principal, ip: str) -> str | None:
    """Whose budget an action spends: the person, the address of an anonymous client, or None
    for a service (API-key holders are trusted and have none)."""
    kind = principal.kind  # not the properties: this runs for every poll
    if kind == "service":
        return None
    if kind == "user":
        return principal.id
    return "ip:" + address_key(ip)


class ReadCharge:
    """What one page of the past spends of its reader's read-from-the-start budget: a token per
    `per` events, as a poll's events cost. Each read of the event log is paid before it is made
    (over budget: 429, and the read is not made), what it did not read is given back, and the
    page's messages cost at least what a poll of as many events would."""

    def __init__(self, bucket: TokenBuckets, key: str, per: int) -> None:
        self._bucket = bucket
        self._key = key
        self._per = per
        self.spent = 0.0

    def take(self, events: int) -> None:
        cost = events / self._per
        self._bucket.take_now(self._key, cost)
        self.spent += cost

    def give_back(self, events: int) -> None:
        if events > 0:
            cost = events / self._per
            self._bucket.give_back(self._key, cost)
            self.spent -= cost

    def settle(self, messages: int) -> None:
        """A page of `messages` costs one token at least, less what its reads have paid."""
        if messages:
            owed = max(1.0, messages / self._per) - self.spent
            if owed > 0:
                self._bucket.take_now(self._key, owed)
                self.spent += owed
