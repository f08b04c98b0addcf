"""A keep-alive connection's known caller: the principal its last poll's credential bytes were
verified as, taken again for the same bytes, yet still signed out, expired and rotated out."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest

from app.identity.principal import Principal
from app.identity.tokens import TokenService
from app.web.deps import SESSION_COOKIE, NeedsAwait
from app.web.polllane import PollLane
from tests.clients import sign_in
from tests.fixtures.server import API_KEY, ServerFactory

SECRET = "s" * 48


def service() -> TokenService:
    return TokenService(SECRET, api_keys={"svc": "k" * 24}, session_ttl=600, ticket_ttl=60)


def lane(tokens: TokenService) -> PollLane:
    lane = PollLane.__new__(PollLane)  # only its caller-telling part, which needs the tokens
    lane.tokens = tokens
    return lane


def test_the_same_bytes_on_the_same_connection_are_not_verified_again() -> None:
    tokens = service()
    token = tokens.issue_session("alice", "Alice")
    connection = SimpleNamespace(known_caller=None)
    cookie = [(b"cookie", f"{SESSION_COOKIE}={token}".encode())]
    first = lane(tokens)._identify(cookie, None, connection)
    assert first.id == "alice" and first.via_cookie
    tokens.verified.forget_all(tokens.app_tokens.keys_version)  # so a lookup would show
    again = lane(tokens)._identify([(b"cookie", bytes(bytearray(cookie[0][1])))], None, connection)
    assert again is first and len(tokens.verified) == 0
    # Another connection, or other bytes on this one, are verified.
    assert lane(tokens)._identify(cookie, None, SimpleNamespace(known_caller=None)) == first
    assert len(tokens.verified) == 1
    bearer = [(b"authorization", f"Bearer {token}".encode())]
    by_header = lane(tokens)._identify(bearer, None, connection)
    assert by_header.id == "alice" and not by_header.via_cookie
    assert connection.known_caller.authorization == bearer[0][1]


def test_a_ticket_is_never_taken_from_memory() -> None:
    tokens = service()
    token = tokens.issue_session("alice", "Alice")
    connection = SimpleNamespace(known_caller=None)
    cookie = [(b"cookie", f"{SESSION_COOKIE}={token}".encode())]
    lane(tokens)._identify(cookie, None, connection)
    known = connection.known_caller
    with pytest.raises(NeedsAwait):  # no bearer token: the ticket must be redeemed, once
        lane(tokens)._identify(cookie, "a-ticket", connection)
    # A bearer token wins over a ticket, as in `identify_now`; nothing is kept from that poll.
    bob = tokens.issue_session("bob", "Bob")
    bearer = [(b"authorization", f"Bearer {bob}".encode())]
    assert lane(tokens)._identify(bearer, "a-ticket", connection).id == "bob"
    assert connection.known_caller is known


def test_a_long_cookie_header_is_not_kept() -> None:
    tokens = service()
    token = tokens.issue_session("alice", "Alice")
    connection = SimpleNamespace(known_caller=None)
    crowded = f"{SESSION_COOKIE}={token}; other={'x' * 4000}".encode()
    assert lane(tokens)._identify([(b"cookie", crowded)], None, connection).id == "alice"
    assert connection.known_caller is None


def test_no_credential_and_an_anonymous_answer_are_not_kept() -> None:
    tokens = service()
    connection = SimpleNamespace(known_caller=None)
    assert lane(tokens)._identify([], None, connection).is_anonymous
    stale = [(b"cookie", f"{SESSION_COOKIE}=not.a.token".encode())]
    assert lane(tokens)._identify(stale, None, connection).is_anonymous
    assert connection.known_caller is None


async def test_a_known_caller_stands_until_signed_out_expired_or_the_keys_change() -> None:
    tokens = service()
    person = tokens.know(None, b"c", tokens.authenticate_bearer(tokens.issue_session("al", "Al")))
    assert tokens.recall(person) is person.principal
    key = tokens.know(b"Bearer " + b"k" * 24, None, tokens.authenticate_bearer("k" * 24))
    assert key.expires is None and tokens.recall(key) is key.principal
    past = tokens.know(None, None, Principal("user", "x", "x", expires_at=time.time() - 1))
    assert tokens.recall(past) is None
    tokens.app_tokens.keys_version += 1  # as a refetch that changed the application's keys
    assert tokens.recall(person) is None and tokens.recall(key) is None
    person = tokens.know(None, b"c", person.principal)
    await tokens.revocations.revoke("al")
    assert tokens.recall(person) is None


async def poll(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, headers: str
) -> tuple[int, dict[str, Any]]:
    """One GET on a kept-alive connection, answered with a Content-Length."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    body = await asyncio.wait_for(reader.readexactly(length), 10)
    return int(head.split()[1]), orjson.loads(body)


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_one_connection_polling_is_refused_once_its_person_signs_out(
    start_server: ServerFactory, launch: str
) -> None:
    """Under plain uvicorn, the connection's second request on is the quick lane's."""
    server = start_server(launch=launch)
    token, user = await sign_in(server.url, "Kept")
    mine = f"/api/channels/user:{user['id']}/events?after=0"
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        bearer = f"Authorization: Bearer {token}\r\n"
        for _ in range(3):
            assert (await poll(reader, writer, mine, bearer))[0] == 200
        other, other_user = await sign_in(server.url, "Other")
        theirs = f"/api/channels/user:{other_user['id']}/events?after=0"
        as_other = f"Authorization: Bearer {other}\r\n"
        assert (await poll(reader, writer, theirs, as_other))[0] == 200
        assert (await poll(reader, writer, mine, as_other))[0] == 403
        by_cookie = f"Cookie: {SESSION_COOKIE}={token}\r\n"
        assert (await poll(reader, writer, mine, by_cookie))[0] == 200
        assert (await poll(reader, writer, mine, by_cookie))[0] == 200
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            revoked = await client.delete(
                f"/api/people/{user['id']}/sessions",
                headers={"Authorization": f"Bearer {API_KEY}"},
            )
            assert revoked.status_code == 204
        status, body = await poll(reader, writer, mine, by_cookie)
        assert status == 401  # a signed-out cookie reads as no one: private channels refuse
        status, body = await poll(reader, writer, mine, bearer)
        assert (status, body["error"]["code"]) == (401, "token_revoked")
        assert (await poll(reader, writer, theirs, as_other))[0] == 200
    finally:
        writer.close()
