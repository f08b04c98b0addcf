"""Revocations are bounded (`max_revocations`) without ever forgetting one: past the bound a new
person's sign-out is refused with 503, and every held one still refuses its tokens. The
people remembered as having a row and the used tickets' rows are gauges too."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from app.errors import Unavailable
from app.identity.revocation import Revocations
from tests.clients import sign_in
from tests.fixtures.server import ServerFactory

LAUNCHES = ["python -m app", "uvicorn"]


def gauge(page: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", page, re.M)
    assert match is not None, name
    return float(match[1])


@pytest.mark.parametrize("launch", LAUNCHES)
async def test_past_the_bound_a_new_sign_out_is_refused_and_none_is_forgotten(
    start_server: ServerFactory, launch: str
) -> None:
    # The whole bound open to guests (test_guest_room.py keeps guests to a share of it).
    server = start_server(launch=launch, max_revocations=3, guest_revocation_share=1)
    people = [await sign_in(server.url, f"P{i}") for i in range(3)]
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:

        def auth(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        for token, _ in people[:2]:
            assert (await client.delete("/api/session", headers=auth(token))).status_code == 204
        filled = await client.delete("/api/people/someone/sessions", headers=server.service_headers)
        assert filled.status_code == 204
        last = people[2][0]
        refused = await client.delete("/api/session", headers=auth(last))
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "unavailable"
        assert int(refused.headers["retry-after"]) >= 1
        assert (await client.get("/api/session", headers=auth(last))).status_code == 200
        for token, _ in people[:2]:  # held, not forgotten
            assert (await client.get("/api/session", headers=auth(token))).status_code == 401
        # A service revoking one of those held again is no new entry: it lands.
        again = await client.delete(
            f"/api/people/{people[0][1]['id']}/sessions", headers=server.service_headers
        )
        assert again.status_code == 204
        ticket = await client.post("/api/tickets", headers=server.service_headers)
        opened = await client.get(
            "/api/channels/public:x/events", params={"ticket": ticket.json()["ticket"]}
        )
        assert opened.status_code == 200
        page = (await client.get("/metrics")).text
    assert gauge(page, "fourcast_revoked_people") == 3
    assert gauge(page, "fourcast_revocations_refused_total") == 1
    assert gauge(page, "fourcast_accounts_known") == 3  # the guests signed up here
    assert gauge(page, "fourcast_used_tickets") == 1


async def test_a_revocation_from_another_node_is_applied_past_the_bound() -> None:
    """Admitted there (its copy holds the same people): never dropped here."""
    revocations = Revocations(600, max_people=1)
    await revocations.revoke("a")
    with pytest.raises(Unavailable):
        await revocations.revoke("b")
    revocations.apply("c", time.time())
    assert revocations.is_revoked("a", 0) and revocations.is_revoked("c", 0)
    assert not revocations.is_revoked("b", 0) and revocations.refused == 1
