"""Tokens, tickets, namespace policy and limits."""

from __future__ import annotations

import pytest

from app.errors import Forbidden, RateLimited, Unauthorized, Unavailable
from app.identity.budgets import Budgets, spend_subscribe
from app.identity.limits import ConnectionLimits, TokenBuckets
from app.identity.policy import check_publish, check_read
from app.identity.principal import ANONYMOUS, Principal
from app.identity.tickets import MemoryTicketClaims
from app.identity.tokens import TokenService
from app.settings import Settings

SERVICE = Principal("service", "billing", "billing")
ALICE = Principal("user", "alice", "Alice")


def tokens() -> TokenService:
    return TokenService("s" * 48, api_keys={"billing": "k" * 20}, session_ttl=60, ticket_ttl=60)


def test_session_token_and_api_key_authenticate() -> None:
    service = tokens()
    principal = service.authenticate_bearer(service.issue_session("alice", "Alice"))
    assert (principal.kind, principal.id, principal.name) == ("user", "alice", "Alice")
    assert principal.expires_at is not None
    assert service.authenticate_bearer("k" * 20) == SERVICE


def test_forged_or_foreign_tokens_are_refused() -> None:
    other = TokenService("t" * 48, api_keys={}, session_ttl=60, ticket_ttl=60)
    with pytest.raises(Unauthorized):
        tokens().authenticate_bearer(other.issue_session("alice", "Alice"))
    with pytest.raises(Unauthorized):
        tokens().authenticate_bearer("k" * 19)


async def test_tickets_are_single_use_and_not_session_tokens() -> None:
    service = tokens()
    ticket = service.issue_ticket(ALICE)
    with pytest.raises(Unauthorized):
        service.authenticate_bearer(ticket)
    checked = service.read_ticket(ticket)
    assert checked.principal.id == "alice"
    await service.spend_ticket(checked)
    with pytest.raises(Unauthorized):
        await service.spend_ticket(service.read_ticket(ticket))
    with pytest.raises(Unauthorized):
        service.read_ticket(service.issue_session("alice", "Alice"))


class DownClaims(MemoryTicketClaims):
    async def release(self, jti: str) -> None:
        raise Unavailable("ticket store unavailable: down", retry_after=2)


@pytest.mark.parametrize("claims", [MemoryTicketClaims, DownClaims])
async def test_a_ticket_given_back_is_usable_once_more_unless_its_store_fails(
    claims: type[MemoryTicketClaims],
) -> None:
    service = TokenService("s" * 48, api_keys={}, session_ttl=60, ticket_ttl=60, tickets=claims())
    checked = service.read_ticket(service.issue_ticket(ALICE))
    await service.spend_ticket(checked)
    await service.give_back_ticket(checked)  # a failing store is logged, not raised
    if claims is DownClaims:
        with pytest.raises(Unauthorized):
            await service.spend_ticket(checked)
        return
    await service.spend_ticket(checked)
    with pytest.raises(Unauthorized):
        await service.spend_ticket(checked)


@pytest.mark.parametrize(
    ("principal", "channel", "error"),
    [
        (ANONYMOUS, "public:x", None),
        (ANONYMOUS, "room:x", Unauthorized),
        (ANONYMOUS, "user:alice", Unauthorized),
        (ALICE, "room:x", None),
        (ALICE, "user:alice", None),
        (ALICE, "user:bob", Forbidden),
        (SERVICE, "user:bob", None),
    ],
)
def test_read_policy(principal: Principal, channel: str, error: type[Exception] | None) -> None:
    if error is None:
        check_read(principal, channel)
    else:
        with pytest.raises(error):
            check_read(principal, channel)


@pytest.mark.parametrize(
    ("principal", "channel", "error"),
    [
        (ALICE, "room:x", None),
        (ALICE, "public:x", Forbidden),
        (ALICE, "user:alice", Forbidden),
        (ANONYMOUS, "room:x", Unauthorized),
        (SERVICE, "public:x", None),
        (SERVICE, "user:alice", None),
    ],
)
def test_publish_policy(principal: Principal, channel: str, error: type[Exception] | None) -> None:
    if error is None:
        check_publish(principal, channel)
    else:
        with pytest.raises(error):
            check_publish(principal, channel)


async def test_token_bucket_allows_the_burst_then_says_when_to_retry() -> None:
    buckets = TokenBuckets(rate=10, burst=3)
    for _ in range(3):
        await buckets.take("alice")
    with pytest.raises(RateLimited) as limited:
        await buckets.take("alice")
    assert 0 < limited.value.retry_after <= 0.1
    await buckets.take("bob")  # buckets are per key


def test_a_subscribes_budgets_are_taken_both_or_neither_and_can_be_given_back() -> None:
    settings = Settings(database_url="", subscribe_burst=1, read_all_burst=1)
    budgets = Budgets.for_settings(settings, clock=lambda: 0.0)  # no refill: time stands still
    give_back = spend_subscribe(budgets, "alice", ALICE, "10.0.0.1", 0)
    with pytest.raises(RateLimited):
        spend_subscribe(budgets, "alice", ALICE, "10.0.0.1", 0)
    give_back()  # refused after them (a ticket already used): both come back
    spend_subscribe(budgets, "alice", ALICE, "10.0.0.1", 0)
    # Over Alice's read-from-the-start budget: the other key's subscribe token is not kept.
    with pytest.raises(RateLimited):
        spend_subscribe(budgets, "conn:2", ALICE, "10.0.0.1", 0)
    budgets.subscribe.take_now("conn:2")


def test_connection_caps_per_user_per_ip_and_total() -> None:
    limits = ConnectionLimits(per_user=2, per_ip=3, total=4)
    limits.acquire("a", "1.1.1.1")
    limits.acquire("a", "1.1.1.1")
    with pytest.raises(RateLimited):
        limits.acquire("a", "2.2.2.2")
    limits.acquire(None, "1.1.1.1")
    with pytest.raises(RateLimited):
        limits.acquire("b", "1.1.1.1")
    limits.acquire("b", "2.2.2.2")
    with pytest.raises(Unavailable):
        limits.acquire("c", "3.3.3.3")
    limits.release("a", "1.1.1.1")
    limits.acquire("c", "3.3.3.3")
    assert limits.open == 4


def test_connection_counts_stay_right_and_bounded_as_people_come_and_go() -> None:
    """A count at none is kept (a poller's goes 1 -> 0 -> 1 every poll), and the zeros are
    dropped in bulk: however many people and addresses pass, each dict stays within SPARE
    keys over twice the connections open, and the caps still count right."""
    limits = ConnectionLimits(per_user=2, per_ip=2, total=100_000)
    bound = ConnectionLimits.SPARE + 1
    limits.acquire("stays", "9.9.9.9")
    for i in range(5 * ConnectionLimits.SPARE):
        limits.acquire(f"u{i}", f"10.0.{i // 256}.{i % 256}")
        limits.acquire(f"u{i}", f"10.0.{i // 256}.{i % 256}")
        limits.release(f"u{i}", f"10.0.{i // 256}.{i % 256}")
        limits.release(f"u{i}", f"10.0.{i // 256}.{i % 256}")
        assert len(limits._by_user) <= bound + 2 * limits.open
        assert len(limits._by_ip) <= bound + 2 * limits.open
    assert limits.open == 1
    limits.acquire("stays", "9.9.9.9")  # its count survived the drops: one more is the cap
    with pytest.raises(RateLimited):
        limits.acquire("stays", "8.8.8.8")
    with pytest.raises(RateLimited):
        limits.acquire(None, "9.9.9.9")
    limits.acquire("u0", "10.0.0.0")  # a dropped zero counts from none again
    limits.acquire("u0", "10.0.0.0")
    with pytest.raises(RateLimited):
        limits.acquire("u0", "10.0.0.1")
    for _ in range(2):
        limits.release("u0", "10.0.0.0")
        limits.release("stays", "9.9.9.9")
    assert limits.open == 0
    assert not any(limits._by_user.values()) and not any(limits._by_ip.values())
