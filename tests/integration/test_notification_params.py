"""`GET /api/notifications`'s one parameter, `unread`, is a yes or no: the listed ones follow it,
and a value that is neither is `400 bad_parameter` naming it, not read as no (docs/protocol.md)."""

from __future__ import annotations

import httpx
import pytest

from tests.clients import sign_in
from tests.fixtures.server import ServerProcess


@pytest.mark.parametrize("unread", ["maybe", "2", "tru", "on", "true,false"])
async def test_an_unread_that_is_not_true_or_false_is_400(
    shared_server: ServerProcess, unread: str
) -> None:
    token, _ = await sign_in(shared_server.url, "reader")
    async with httpx.AsyncClient(base_url=shared_server.url, timeout=20) as client:
        response = await client.get(
            "/api/notifications",
            params={"unread": unread},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": {"code": "bad_parameter", "message": "unread must be true or false"}
    }


async def test_unread_lists_the_unread_ones_or_all(shared_server: ServerProcess) -> None:
    token, user = await sign_in(shared_server.url, "reader")
    person = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=shared_server.url, timeout=20) as client:
        sent = []
        for title in ("one", "two"):
            response = await client.post(
                "/api/notifications",
                json={"user": user["id"], "title": title},
                headers=shared_server.service_headers,
            )
            assert response.status_code == 201, response.text
            sent.append(response.json()["id"])
        read = await client.post(f"/api/notifications/{sent[0]}/read", headers=person)
        assert read.status_code == 200, read.text

        async def listed(**params: str) -> list[str]:
            response = await client.get("/api/notifications", params=params, headers=person)
            assert response.status_code == 200, response.text
            return [n["id"] for n in response.json()["notifications"]]

        everything = [sent[1], sent[0]]  # newest first
        assert await listed() == everything
        for no in ("false", "0", "no", "False", ""):
            assert await listed(unread=no) == everything
        for yes in ("true", "1", "yes", "TRUE"):
            assert await listed(unread=yes) == [sent[1]]
