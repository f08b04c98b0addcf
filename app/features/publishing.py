"""The one path every publish takes, whichever transport it came in on.

Identity and channel policy, per-person rate limits, size limits and per-type rules (a chat message's
text, the typing throttle) are applied here once, so REST and WebSocket publishes behave the same.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..bus import Bus, BusDraining, BusUnavailable, Event
from ..bus.events import EventError, encode_data, validate_channel, validate_type
from ..errors import BadParameter, InvalidInput, Unavailable
from ..identity.limits import RateLimiter, TokenBuckets, address_key
from ..identity.policy import check_publish
from ..identity.principal import Principal
from ..observability.metrics import Metrics

log = logging.getLogger(__name__)

SERVER = Principal("service", "fourcast", "fourcast")
"""The server itself, when it publishes (presence changes, notifications)."""


class Suppressed(Exception):
    """A rule accepted the publish but chose not to forward it (e.g. typing throttled)."""


Rule = Callable[[Principal, str, Any], Any]
"""Validates or normalises `data` for one event type (may be async); raises InvalidInput or
Suppressed."""


@dataclass(slots=True)
class PublishResult:
    event: Event | None
    created: bool
    suppressed: bool = False


class Publisher:
    def __init__(self, bus: Bus, buckets: RateLimiter, max_event_bytes: int) -> None:
        self._bus = bus
        self._buckets = buckets
        self._max_event_bytes = max_event_bytes
        self._rules: dict[tuple[str, str], Rule] = {}
        self._always_ephemeral: set[tuple[str, str]] = set()
        self._never_ephemeral: set[tuple[str, str]] = set()
        self.metrics: Metrics | None = None
        self.address_budget: TokenBuckets | None = None
        """People's publishes per client address, on this node: one address may sign up many
        guests, each with a budget of its own (None: none, as for tests)."""

    def add_rule(
        self,
        namespace: str,
        event_type: str,
        rule: Rule,
        *,
        always_ephemeral: bool = False,
        never_ephemeral: bool = False,
    ) -> None:
        """`never_ephemeral`: a type whose history must hold every one (a chat message, which
        readers live would see and a reload would not)."""
        self._rules[(namespace, event_type)] = rule
        if always_ephemeral:
            self._always_ephemeral.add((namespace, event_type))
        if never_ephemeral:
            self._never_ephemeral.add((namespace, event_type))

    async def publish(
        self,
        principal: Principal,
        channel: object,
        event_type: object,
        data: Any,
        *,
        ephemeral: bool = False,
        idempotency_key: str | None = None,
        ip: str = "",
    ) -> PublishResult:
        """`ip`: the client's address, whose people's publishes have a budget together."""
        try:
            channel = validate_channel(channel)
            event_type = validate_type(event_type)
        except EventError as exc:
            if exc.code == "reserved_type":
                raise BadParameter(exc.message, code=exc.code) from None
            raise InvalidInput(exc.message, code=exc.code) from None
        check_publish(principal, channel)
        key = (channel.partition(":")[0], event_type)
        rule = self._rules.get(key)
        if key in self._always_ephemeral:
            ephemeral = True
        elif ephemeral and key in self._never_ephemeral:
            # Before the budget, as a bad channel or type: the publish is refused whole.
            raise InvalidInput(
                f"{event_type} events on {key[0]}: channels are kept in history, never ephemeral",
                code="ephemeral_not_allowed",
            )
        if principal.is_user:
            # Before the rule: a publish refused for the budget must leave no state a rule
            # keeps (a typing signal shown as typing); a suppressed one is spent too.
            await self._buckets.take(principal.id)
            if self.address_budget is not None:
                self.address_budget.take_now(address_key(ip))
        if rule is not None:
            try:
                data = rule(principal, channel, data)
                if inspect.isawaitable(data):
                    data = await data
            except Suppressed:
                return PublishResult(None, False, suppressed=True)
        return await self.publish_trusted(
            principal,
            channel,
            event_type,
            data,
            ephemeral=ephemeral,
            idempotency_key=idempotency_key,
        )

    async def publish_trusted(
        self,
        principal: Principal,
        channel: str,
        event_type: str,
        data: Any,
        *,
        ephemeral: bool = False,
        idempotency_key: str | None = None,
    ) -> PublishResult:
        """Publish without policy checks: for the server's own events and checked callers."""
        try:
            encoded = encode_data(data, self._max_event_bytes)
        except EventError as exc:
            raise InvalidInput(exc.message, code=exc.code) from None
        try:
            event, created = await self._bus.publish(
                channel,
                event_type,
                encoded,
                principal.sender,
                ephemeral=ephemeral,
                idempotency_key=idempotency_key,
            )
        except BusDraining:
            self._count("refused")
            raise Unavailable("server is restarting", retry_after=2) from None
        except BusUnavailable as exc:
            self._count("refused")
            # The cause (a storage error, perhaps with SQL and others' data) stays in the log.
            log.warning("publish to %s refused: event log unavailable: %s", channel, exc)
            raise Unavailable("event log unavailable", retry_after=2) from None
        self._count("created" if created else "replayed")
        return PublishResult(event, created)

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.published[outcome].inc()
