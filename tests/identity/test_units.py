"""Scopes, API key entries, names, revocation bookkeeping and JWKS key rotation, in-process."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from starlette.requests import HTTPConnection
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.errors import Forbidden, Unauthorized, Unavailable
from app.identity.apikeys import parse_env
from app.identity.apptokens import AppTokens, KeysMissing
from app.identity.names import normalise_name
from app.identity.owntokens import CLOCK_SKEW, Ticket
from app.identity.policy import check_publish, check_read
from app.identity.principal import Principal
from app.identity.revocation import Revocations
from app.identity.scopes import Scopes, parse_scopes, split_key
from app.identity.tokens import TokenService
from app.main import create_app
from app.settings import Settings
from app.web.api import socket
from app.web.deps import NeedsAwait, identify, identify_now
from tests.identity.backend import Backend, old_and_new

KEY = "k" * 20


def test_old_key_entries_keep_every_channel_and_new_ones_carry_scopes() -> None:
    keys = parse_env(f"billing:{KEY},prices:{KEY}x:publish=public:prices*|read=public:*")
    assert split_key(keys["billing"]) == (KEY, None)
    assert split_key(keys["prices"]) == (
        KEY + "x",
        Scopes(read=("public:*",), publish=("public:prices*",)),
    )
    # A key that happens to contain ':' stays a key when the rest is no scope list.
    assert split_key(f"{KEY}:not-a-scope") == (f"{KEY}:not-a-scope", None)
    assert parse_scopes("room:a") == Scopes(("room:a",), ("room:a",))
    with pytest.raises(ValueError, match="at least 16"):
        parse_env("short:abc:public:x")
    with pytest.raises(ValueError):
        parse_scopes("write=public:x")


def test_a_key_entry_without_a_name_is_refused_without_quoting_the_key() -> None:
    """What stands before the first colon of an entry with no name may be the key itself: the
    message (on stderr, in the service's logs) names the entry's position instead."""
    secret = "s3cr3t-k3y-value-0123456789"
    with pytest.raises(ValueError) as refused:
        parse_env(f"billing:{KEY},{secret}")
    assert "entry 2" in str(refused.value) and "s3cr3t" not in str(refused.value)
    with pytest.raises(ValueError) as refused:
        parse_env(f"{secret}:")
    assert "s3cr3t" not in str(refused.value)


def test_two_keys_of_one_name_are_refused_not_one_silently_dropped() -> None:
    with pytest.raises(ValueError, match="'billing' is given twice"):
        parse_env(f"billing:{KEY},billing:{KEY}new")


def test_a_key_name_in_both_the_variable_and_the_file_is_refused(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"billing:{KEY}new\n")
    with pytest.raises(ValueError, match="both FOURCAST_API_KEYS and FOURCAST_API_KEYS_FILE"):
        Settings(api_keys=f"billing:{KEY}", api_keys_file=keys_file)
    assert Settings(api_keys=f"prices:{KEY}", api_keys_file=keys_file).all_api_keys().keys() == {
        "prices",
        "billing",
    }


def test_scoped_service_and_capable_person_policy() -> None:
    prices = Principal("service", "prices", "prices", scopes=parse_scopes("publish=public:prices*"))
    check_publish(prices, "public:prices.eur")
    with pytest.raises(Forbidden):
        check_publish(prices, "public:other")
    with pytest.raises(Forbidden):
        check_read(prices, "public:prices.eur")  # publish only
    alice = Principal("user", "alice", "Alice", scopes=Scopes(read=("user:team-*",)))
    check_read(alice, "user:team-1")
    check_read(alice, "user:alice")
    with pytest.raises(Forbidden):
        check_read(alice, "user:bob")
    with pytest.raises(Forbidden):
        check_publish(alice, "user:team-1")


def test_names_are_normalised() -> None:
    assert normalise_name("  A\u0308nna\u200d\u2066 \t Lee\u202c ") == "\u00c4nna Lee"
    assert normalise_name("\u0000\u200b") == ""
    assert len(normalise_name("x" * 100)) == 40


async def test_revocations_refuse_older_credentials_wake_watchers_and_expire() -> None:
    revocations = Revocations(ttl=60)
    woken: list[str] = []
    unwatch = revocations.watch("alice", lambda: woken.append("alice"))
    at = await revocations.revoke("alice")
    assert woken == ["alice"]
    assert revocations.is_revoked("alice", at - 1) and not revocations.is_revoked("alice", at + 1)
    unwatch()
    revocations.apply("bob", time.time() - 120)  # older than any credential: not kept
    assert len(revocations) == 1
    revocations.apply("carol", time.time())
    revocations._ttl = 0  # every held entry is now past its lifetime
    revocations.apply("dave", time.time() + 1)
    assert len(revocations) == 1


async def test_sign_out_revokes_session_tokens_and_tickets() -> None:
    tokens = TokenService("s" * 48, api_keys={}, session_ttl=600, ticket_ttl=60)
    token = tokens.issue_session("alice", "Alice")
    principal = tokens.authenticate_bearer(token)
    ticket = tokens.issue_ticket(principal)
    await tokens.revocations.revoke("alice")
    with pytest.raises(Unauthorized):
        tokens.authenticate_bearer(token)
    with pytest.raises(Unauthorized):
        await tokens.spend_ticket(tokens.read_ticket(ticket))
    assert tokens.authenticate_bearer(tokens.issue_session("alice", "Alice")).id == "alice"


async def test_an_unknown_kid_refetches_the_jwks_at_most_once_per_interval(
    tmp_path: Path,
) -> None:
    old, new, jwks = old_and_new(tmp_path)
    app = AppTokens(jwks_file=jwks, min_refetch=0)
    tokens = TokenService("s" * 48, api_keys={}, session_ttl=600, ticket_ttl=60, app_tokens=app)
    await tokens.start()
    assert (await tokens.authenticate(old.mint("u1"))).id == "u1"
    with pytest.raises(KeysMissing):
        tokens.authenticate_bearer(new.mint("u2"))  # no I/O on the synchronous path
    # Rotation: the new key is published beside the old one.
    both = (
        json.loads(old.jwks_file.read_text())["keys"]
        + json.loads(new.jwks_file.read_text())["keys"]
    )
    jwks.write_text(json.dumps({"keys": both}))
    assert (await tokens.authenticate(new.mint("u2"))).id == "u2"
    # Rate-limited: with a long interval, unknown kids do not refetch again.
    slow = AppTokens(jwks_file=jwks, min_refetch=3600)
    await slow.refresh()
    jwks.write_text(old.jwks_file.read_text())
    await slow.refresh()
    header = jwt.get_unverified_header(new.mint("u3"))
    assert slow.decode(new.mint("u3"), header)["sub"] == "u3"  # still the cached set


async def test_hs256_application_tokens_and_their_limits() -> None:
    app = AppTokens(secret="a" * 40, audience="fourcast")
    tokens = TokenService("s" * 48, api_keys={}, session_ttl=600, ticket_ttl=60, app_tokens=app)
    now = int(time.time())
    good = jwt.encode(
        {"sub": "u1", "exp": now + 60, "aud": "fourcast", "name": "U\u202eone"}, "a" * 40
    )
    principal = await tokens.authenticate(good)
    assert (principal.id, principal.name) == ("u1", "Uone")
    for claims in (
        {"sub": "u1", "exp": now + 60, "aud": "other"},
        {"sub": "u1", "exp": now + 100_000, "aud": "fourcast"},
        {"sub": "u1", "exp": now + 60, "aud": "fourcast", "channels": {"read": "x"}},
    ):
        with pytest.raises(Unauthorized):
            await tokens.authenticate(jwt.encode(claims, "a" * 40))
    # Our own session tokens still verify beside the application's.
    assert tokens.authenticate_bearer(tokens.issue_session("g1", "Guest")).id == "g1"


async def test_keys_are_fetched_from_a_jwks_url(tmp_path: Path) -> None:
    backend = Backend(tmp_path, "served")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json"
        app = AppTokens(jwks_url=url, min_refetch=0)
        tokens = TokenService("s" * 48, api_keys={}, session_ttl=600, ticket_ttl=60, app_tokens=app)
        assert (await tokens.authenticate(backend.mint("u1"))).id == "u1"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


async def test_a_token_whose_alg_does_not_fit_its_key_is_refused_not_a_crash(
    tmp_path: Path,
) -> None:
    """The `kid` is public (it is in the JWKS): anyone may name the RSA key in an ES256 token,
    or an EC key in an RS256 one. That is a bad token (401), never an exception (500)."""
    backend = Backend(tmp_path, "rsa")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_jwk = json.loads(ECAlgorithm.to_jwk(ec_key.public_key()))
    ec_jwk["kid"] = "ec"
    keys = json.loads(backend.jwks_file.read_text())["keys"] + [ec_jwk]
    backend.jwks_file.write_text(json.dumps({"keys": keys}))
    app = AppTokens(jwks_file=backend.jwks_file, min_refetch=0)
    tokens = TokenService("s" * 48, api_keys={}, session_ttl=600, ticket_ttl=60, app_tokens=app)
    await tokens.start()
    claims = {"sub": "u1", "exp": int(time.time()) + 60}
    swapped = (
        jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "rsa"}),
        jwt.encode(claims, backend.key, algorithm="RS256", headers={"kid": "ec"}),
    )
    for token in swapped:
        with pytest.raises(Unauthorized) as refused:
            await tokens.authenticate(token)
        assert refused.value.code == "invalid_token"
    # The keys themselves still verify tokens of their own algorithm.
    assert (await tokens.authenticate(backend.mint("u1"))).id == "u1"
    good = jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "ec"})
    assert (await tokens.authenticate(good)).id == "u1"


async def test_a_jwks_outage_is_503_not_a_bad_token(tmp_path: Path) -> None:
    """When the application's keys cannot be fetched, a token is not known to be bad: the caller
    gets Unavailable (503, retried later), not invalid_token (401, which clients never retry)."""
    backend = Backend(tmp_path, "served")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json"
    app = AppTokens(jwks_url=url, min_refetch=0)
    tokens = TokenService("s" * 48, api_keys={}, session_ttl=600, ticket_ttl=60, app_tokens=app)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    backend.jwks_file.rename(tmp_path / "hidden.json")  # the endpoint answers 404 for now
    thread.start()
    try:
        await tokens.start()
        with pytest.raises(Unavailable):
            await tokens.authenticate(backend.mint("u1"))
        (tmp_path / "hidden.json").rename(backend.jwks_file)
        assert (await tokens.authenticate(backend.mint("u1"))).id == "u1"
        # With the keys at hand, a token of an unknown key is a bad token again.
        (tmp_path / "other").mkdir()
        with pytest.raises(Unauthorized):
            await tokens.authenticate(Backend(tmp_path / "other", "other").mint("u2"))
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


async def test_a_credential_revoked_before_it_is_watched_still_ends() -> None:
    """A sign-out landing between a stream's authentication and its watch must still end it."""
    tokens = TokenService("s" * 48, api_keys={}, session_ttl=600, ticket_ttl=60)
    principal = tokens.authenticate_bearer(tokens.issue_session("alice", "Alice"))
    await tokens.revocations.revoke("alice")
    ended = asyncio.Event()
    stop = tokens.watch(principal, ended.set)
    try:
        await asyncio.wait_for(ended.wait(), 5)
    finally:
        stop()


def test_a_sign_out_during_the_websocket_handshake_closes_the_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.get_reader

    async def then_signed_out(
        conn: HTTPConnection, token: str | None = None
    ) -> tuple[Principal, Ticket | None]:
        principal, ticket = await real(conn, token)
        await socket.services_of(conn).tokens.revocations.revoke(principal.id)
        return principal, ticket

    monkeypatch.setattr(socket, "get_reader", then_signed_out)
    app = create_app(Settings(data_dir=tmp_path, secret_key="s" * 48))
    with TestClient(app) as client:
        token = client.post("/api/session", json={"name": "Alice"}).json()["token"]
        offered = ["fourcast.v1", f"fourcast.bearer.{token}"]
        with (
            client.websocket_connect("/ws", subprotocols=offered) as ws,
            pytest.raises(WebSocketDisconnect) as closed,
        ):
            for _ in range(3):
                message = ws.receive_json()
                assert message["op"] != "pong", "the signed-out socket stayed open"
                ws.send_json({"op": "ping", "ts": 1})
    assert closed.value.code == 4401


async def test_a_ticket_claim_outlives_the_ticket_by_the_clock_skew_allowed() -> None:
    """A node whose clock lags still takes a ticket for unexpired after its `exp`: the claim
    must be remembered past `exp` (by CLOCK_SKEW), or the ticket works once more there."""
    claimed: list[float] = []

    class Recording:
        async def claim(self, jti: str, expires_at: float) -> bool:
            claimed.append(expires_at)
            return True

    tokens = TokenService(
        "s" * 48, api_keys={}, session_ttl=600, ticket_ttl=60, tickets=Recording()
    )
    principal = tokens.authenticate_bearer(tokens.issue_session("alice", "Alice"))
    ticket = tokens.issue_ticket(principal)
    await tokens.spend_ticket(tokens.read_ticket(ticket))
    exp = jwt.decode(ticket, options={"verify_signature": False})["exp"]
    assert claimed == [exp + CLOCK_SKEW]


async def test_an_app_token_minted_just_after_a_revocation_works_with_a_fractional_iat() -> None:
    """As docs/tokens.md says: `iat` with its fraction is newer than a revocation made moments
    before; a whole-second `iat` in the revocation's second counts as before it."""
    app = AppTokens(secret="a" * 40)
    tokens = TokenService("s" * 48, api_keys={}, session_ttl=600, ticket_ttl=60, app_tokens=app)
    at = await tokens.revocations.revoke("u1")
    now = at + 0.001  # minted a moment later
    fresh = jwt.encode({"sub": "u1", "iat": now, "exp": int(now) + 60}, "a" * 40)
    assert (await tokens.authenticate(fresh)).id == "u1"
    whole = jwt.encode({"sub": "u1", "iat": int(at), "exp": int(now) + 60}, "a" * 40)
    with pytest.raises(Unauthorized, match="signed out"):
        await tokens.authenticate(whole)


async def test_an_iat_in_the_future_is_refused_it_would_escape_revocation() -> None:
    """Revocation refuses tokens with `iat` at or before it: an `iat` far ahead (a fast clock, or
    not a number at all) would survive every sign-out. Beyond CLOCK_SKEW it is a bad token."""
    app = AppTokens(secret="a" * 40)
    tokens = TokenService("s" * 48, api_keys={}, session_ttl=600, ticket_ttl=60, app_tokens=app)
    now = time.time()
    for iat in (now + 3600, float("nan"), float("inf")):
        token = jwt.encode({"sub": "u1", "iat": iat, "exp": int(now) + 60}, "a" * 40)
        with pytest.raises(Unauthorized) as refused:
            await tokens.authenticate(token)
        assert refused.value.code == "invalid_token"
    skewed = jwt.encode({"sub": "u1", "iat": now + 30, "exp": int(now) + 60}, "a" * 40)
    assert (await tokens.authenticate(skewed)).id == "u1"


async def test_the_quick_lanes_identify_now_answers_as_identify_or_defers(
    tmp_path: Path,
) -> None:
    """deps.identify_now (the quick lane, no await) gives identify's answer where it can tell,
    and NeedsAwait (the lane leaves the poll to the route) for tickets and unfetched keys."""
    old, new, jwks = old_and_new(tmp_path)
    app = AppTokens(jwks_file=jwks, min_refetch=0)
    tokens = TokenService(
        "s" * 48, api_keys={"svc": KEY}, session_ttl=600, ticket_ttl=60, app_tokens=app
    )
    await tokens.start()
    session = tokens.issue_session("alice", "Alice")
    cases: list[dict[str, str | None]] = [
        {"authorization": f"Bearer {KEY}", "ticket": None, "cookie": None},
        {"authorization": f"Bearer {session}", "ticket": None, "cookie": None},
        {"authorization": f"Bearer {old.mint('u1')}", "ticket": None, "cookie": None},
        {"authorization": None, "ticket": None, "cookie": session},
        {"authorization": None, "ticket": None, "cookie": "stale"},  # anonymous, not an error
        {"authorization": None, "ticket": None, "cookie": None},
    ]
    for parts in cases:
        said = await identify(tokens, authorization=parts["authorization"], cookie=parts["cookie"])
        assert identify_now(tokens, **parts) == said
    with pytest.raises(Unauthorized):
        identify_now(tokens, authorization="Bearer nope", ticket=None, cookie=None)
    ticket = tokens.issue_ticket(tokens.authenticate_bearer(session))
    with pytest.raises(NeedsAwait):
        identify_now(tokens, authorization=None, ticket=ticket, cookie=None)
    with pytest.raises(NeedsAwait):  # a key this node has not fetched yet
        identify_now(tokens, authorization=f"Bearer {new.mint('u2')}", ticket=None, cookie=None)
    await tokens.stop()
