"""A room's member list is paged: any number of guests may join one room, so one answer of every
membership (1.4 MB and a read of every row for 20,000 of them) is never sent."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pytest

from tests.clients import sign_in
from tests.fixtures.server import ServerFactory, ServerProcess

CROWD = 1_200
"""People put in the room directly: more than two default pages (500), one over 1,000."""


def add_members(server: ServerProcess, room: str, first_joined_at: float) -> None:
    """CROWD people in `room`, three joining in each millisecond (so a page ends inside a tie,
    which the order by id breaks), all before `first_joined_at`; the server must be stopped."""
    db = sqlite3.connect(server.data_dir / "fourcast.db")
    try:
        people = [(f"c{n:05d}", f"crowd {n}", first_joined_at) for n in range(CROWD)]
        db.executemany("INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)", people)
        db.executemany(
            "INSERT INTO memberships (room, user_id, joined_at) VALUES (?, ?, ?)",
            [(room, f"c{n:05d}", first_joined_at - CROWD + n // 3) for n in range(CROWD)],
        )
        db.commit()
    finally:
        db.close()


async def walk(
    client: httpx.AsyncClient, room: str, limit: int | None, between: Any = None
) -> tuple[list[dict[str, Any]], int]:
    """Every member, page by page (`between()` runs after the first page): and the page count."""
    members: list[dict[str, Any]] = []
    after, pages = None, 0
    while pages < 10:  # a bound on failure: 1,202 members are three pages at the least
        params = {} if limit is None else {"limit": limit}
        if after is not None:
            params["after"] = after
        page = await client.get(f"/api/rooms/{room}/members", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["members"]) <= (limit or 500)
        members += body["members"]
        pages += 1
        after = body["next"]
        if after is None:
            return members, pages
        if between is not None and pages == 1:
            await between()
    raise AssertionError(f"still paging after {pages} pages")


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_the_member_list_pages_through_every_member_once(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch)
    token, me = await sign_in(server.url, "counter")
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=30) as client:
        assert (await client.post("/api/rooms/crowd/join")).status_code == 200
        mine = (await client.get("/api/rooms/crowd/members")).json()["members"]
    server.stop()
    add_members(server, "crowd", mine[0]["joined_at"])
    server.start()
    late_token, late = await sign_in(server.url, "late")
    async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=30) as client:

        async def a_late_join() -> None:
            joined = await client.post(
                "/api/rooms/crowd/join", headers={"Authorization": f"Bearer {late_token}"}
            )
            assert joined.json()["joined"] is True

        first = (await client.get("/api/rooms/crowd/members")).json()
        assert len(first["members"]) == 500 and first["next"] is not None
        # Someone joins while a reader is on the first page: they come last, nobody twice.
        by_default, pages = await walk(client, "crowd", None, a_late_join)
        assert pages == 3
        ids = [m["user"] for m in by_default]
        crowd = [f"c{n:05d}" for n in range(CROWD)]
        assert ids == [*crowd, me["id"], late["id"]]
        assert [(m["joined_at"], m["user"]) for m in by_default] == sorted(
            (m["joined_at"], m["user"]) for m in by_default
        )
        assert by_default[0]["name"] == "crowd 0" and by_default[-1]["name"] == "late"
        assert (await walk(client, "crowd", 1000))[1] == 2
        assert [m["user"] for m in (await walk(client, "crowd", 1000))[0]] == ids

        # The rooms list's answers to a bad `limit`, and a bad cursor's to a bad `after`.
        bad = [({"limit": v}, "bad_parameter") for v in ("0", "1001", "x", "1_0")]
        bad += [
            ({"after": v}, "invalid_cursor")
            for v in ("", "c00001", "1.5", "1.5_", "nan_c1", "inf_c1", "1e3_c1", " 1.5_c1")
        ]
        for params, code in bad:
            answer = await client.get("/api/rooms/crowd/members", params=params)
            assert answer.status_code == 400, params
            assert answer.json()["error"]["code"] == code, params
        assert (await client.get("/api/rooms/nowhere/members")).status_code == 404
        assert (await client.get("/api/rooms/bad%20name/members")).status_code == 400
