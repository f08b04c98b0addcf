"""Every bound a hostile client can push against, visible in /metrics (docs/operations.md, Limits).

Read when /metrics is scraped: the sizes and running counts are plain attributes of the
components that keep them, so the hot paths pay nothing for being watched. A size is a gauge; a
count of what a bound turned away or let go, which only grows, is a counter (`_total`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..identity.budgets import NAMES

if TYPE_CHECKING:
    from ..services import Services


def _size(obj: object, name: str) -> float:
    """An attribute some backends have (the in-process ones): 0 where it does not apply."""
    value = getattr(obj, name, 0)
    return float(value) if isinstance(value, int | float) else 0.0


def watch_bounds(services: Services) -> None:
    metrics = services.metrics
    bus = services.bus
    backend = bus.backend
    idempotency = bus.idempotency
    budgets = services.budgets
    typing = services.shared.typing
    presence = services.presence
    publishes = services.shared.rate_limiter  # the publish budget is kept apart (cluster-wide)
    metrics.counted(
        "fourcast_budget_refusals",
        "Actions refused for being over their budget (429 / error op)",
        "budget",
        lambda: {"publish": publishes.refused, **budgets.refused()},
    )

    def keys(name: str) -> float:
        # The publish budget's buckets are in Redis on a cluster (their keys expire there).
        return _size(publishes, "keys") if name == "publish" else budgets.keys(name)

    metrics.gauges(
        "fourcast_budget_keys",
        "Keys (people, addresses) each in-process budget keeps a bucket for (max_budget_keys)",
        "budget",
        ("publish", *NAMES),
        keys,
    )
    metrics.gauge(
        "fourcast_connections_held",
        "Connections counted against the caps: streams and held long polls",
        lambda: float(services.connections.open),
    )
    metrics.gauge(
        "fourcast_subscriptions",
        "Subscriptions this node's hub holds: every WebSocket channel and SSE stream",
        lambda: float(bus.hub.subscriber_count()),
    )
    metrics.gauge(
        "fourcast_bus_channels_in_memory",
        "Channel logs the in-process bus holds in memory (bus_max_channels)",
        lambda: _size(backend, "channels_in_memory"),
    )
    metrics.gauge(
        "fourcast_bus_bytes_in_memory",
        "Bytes of events the in-process bus's channel logs hold in memory (bus_max_bytes)",
        lambda: _size(backend, "bytes"),
    )
    metrics.count(
        "fourcast_bus_channels_evicted",
        "Channel logs that left memory, idle or least recently used (reloaded on use)",
        lambda: int(_size(backend, "evicted")),
    )
    metrics.gauge(
        "fourcast_publishes_pending",
        "Publishes waiting for a group commit (max_pending_publishes)",
        lambda: float(bus.commits.pending),
    )
    metrics.gauge(
        "fourcast_publishes_pending_bytes",
        "Data of the publishes waiting for a group commit (max_pending_publish_bytes)",
        lambda: float(bus.commits.pending_bytes),
    )
    metrics.gauge(
        "fourcast_idempotency_bytes",
        "Bytes the in-process idempotency store holds (idempotency_max_bytes)",
        lambda: _size(idempotency, "bytes"),
    )
    metrics.gauge(
        "fourcast_ephemeral_bytes",
        "Bytes of recent ephemeral events kept for pollers (ephemeral_max_bytes)",
        lambda: float(bus.hub.ephemeral.bytes),
    )
    metrics.count(
        "fourcast_ephemeral_dropped",
        "Recent ephemeral events let go before their 10 s for ephemeral_max_bytes",
        lambda: bus.hub.ephemeral.dropped,
    )
    metrics.count(
        "fourcast_poll_pages_truncated",
        "Poll answers cut at poll_max_bytes",
        lambda: bus.truncated_pages,
    )
    metrics.count(
        "fourcast_history_bus_entries_read",
        "Event log entries read for room history pages (paid from the read_all budget)",
        lambda: services.chat.bus_messages.entries_read,
    )
    metrics.gauge(
        "fourcast_presence_entries",
        "(channel, person) presence entries held by this node (max_presence_entries)",
        lambda: float(presence.bounds.size),
    )
    metrics.count(
        "fourcast_presence_untracked",
        "Arrivals not tracked because max_presence_entries was reached",
        lambda: presence.bounds.untracked,
    )
    metrics.count(
        "fourcast_presence_untracked_per_address",
        "Arrivals not tracked because their address held max_presence_per_address entries",
        lambda: presence.bounds.untracked_address,
    )
    metrics.gauge(
        "fourcast_typing_entries",
        "(room, person) typing entries held in this process (max_typing_entries)",
        lambda: _size(typing, "size"),
    )
    metrics.count(
        "fourcast_typing_dropped",
        "Typing signals dropped because max_typing_entries was reached",
        lambda: int(_size(typing, "dropped")),
    )
    metrics.gauge(
        "fourcast_verified_tokens",
        "People's tokens kept verified in memory (max_verified_tokens)",
        lambda: float(len(services.tokens.verified)),
    )
    revocations = services.tokens.revocations
    metrics.count(
        "fourcast_revocations_refused",
        "Sign-outs refused (503) because max_revocations people's sign-outs were held",
        lambda: revocations.refused,
    )
    metrics.count(
        "fourcast_guest_signups_refused",
        "Guest sign-ups refused (503) to keep room for sign-outs (guest_revocation_share)",
        lambda: services.guests.refused,
    )
    metrics.gauge(
        "fourcast_accounts_known",
        "People remembered as having a row, so their requests insert none (100,000 then forgotten)",
        lambda: float(services.accounts.known),
    )
    metrics.gauge(
        "fourcast_used_tickets",
        "Rows of used tickets in the database, kept until each ticket's expiry (0 on Redis)",
        lambda: _size(services.tokens.ticket_claims, "rows"),
    )
    recovery = getattr(backend, "recovery", None)
    metrics.gauge(
        "fourcast_redis_lost_appends",
        "Redis appends whose reply was lost, kept to look for what they kept (1,000 at most)",
        lambda: float(len(recovery.lost)) if recovery is not None else 0.0,
    )
    metrics.gauge(
        "fourcast_redis_lost_append_bytes",
        "The data of those appends (max_pending_publish_bytes at most)",
        lambda: _size(recovery, "lost_bytes"),
    )
    metrics.count(
        "fourcast_redis_lost_appends_given_up",
        "Redis appends whose reply was lost given up at either bound, unarchived",
        lambda: int(_size(recovery, "given_up")),
    )
    tails = getattr(backend, "tails", None)
    metrics.gauge(
        "fourcast_redis_tail_events",
        "Newest events of listened channels kept to answer polls (redis_tail_events)",
        lambda: float(tails.events) if tails is not None else 0.0,
    )
    metrics.gauge(
        "fourcast_redis_tail_bytes",
        "Bytes of the events those tails hold (redis_tail_max_bytes)",
        lambda: float(tails.bytes) if tails is not None else 0.0,
    )
    metrics.gauge(
        "fourcast_poll_held_channels",
        "Polled channels kept listened for their pollers (Redis; bus_max_channels)",
        lambda: float(len(bus.polls.holds)),
    )
