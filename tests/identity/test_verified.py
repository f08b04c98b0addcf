"""People's tokens kept verified: checked once, yet still revoked, expired and rotated out."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest

from app.errors import Unauthorized
from app.identity.apptokens import AppTokens, KeysMissing
from app.identity.owntokens import ALGORITHM
from app.identity.principal import Principal
from app.identity.tokens import TokenService
from app.identity.verified import VerifiedTokens
from tests.identity.backend import old_and_new

SECRET = "s" * 48


def service(max_verified: int = 10_000) -> TokenService:
    return TokenService(
        SECRET, api_keys={}, session_ttl=600, ticket_ttl=60, max_verified=max_verified
    )


async def test_a_kept_token_is_still_refused_once_its_person_signs_out() -> None:
    tokens = service()
    token = tokens.issue_session("alice", "Alice")
    assert tokens.authenticate_bearer(token).id == "alice"
    assert len(tokens.verified) == 1  # kept: the next poll does not check its signature again
    await tokens.revocations.revoke("alice")
    with pytest.raises(Unauthorized) as refused:
        tokens.authenticate_bearer(token)
    assert refused.value.code == "token_revoked"


def test_a_kept_token_past_its_exp_is_refused_as_expired() -> None:
    tokens = service()
    exp = int(time.time()) - 1
    token = jwt.encode({"sub": "alice", "iat": exp - 10, "exp": exp}, SECRET, ALGORITHM)
    # As if verified while it was valid: the entry must not outlive the token's `exp`.
    tokens.verified.put(token, Principal("user", "alice", "alice", expires_at=exp), exp)
    with pytest.raises(Unauthorized) as refused:
        tokens.authenticate_bearer(token)
    assert refused.value.code == "token_expired"
    assert len(tokens.verified) == 0


def test_entries_expire_as_the_jwt_library_reads_exp_and_the_cache_is_bounded() -> None:
    kept = VerifiedTokens(2)
    alice = Principal("user", "alice", "alice", expires_at=100.7)
    kept.put("a", alice, 100)  # `exp` 100.7 is valid until 100 for the library
    assert kept.get("a", 99.9) is alice
    assert kept.get("a", 100.0) is None
    for token in ("a", "b", "c"):
        kept.put(token, alice, 200)
    assert len(kept) == 2 and kept.get("a", 0) is None and kept.get("c", 0) is alice
    assert len(VerifiedTokens(0)) == 0
    off = VerifiedTokens(0)
    off.put("a", alice, 200)
    assert off.get("a", 0) is None


def test_the_cookie_flag_is_the_request_s_not_the_first_one_s() -> None:
    tokens = service()
    token = tokens.issue_session("alice", "Alice")
    assert not tokens.authenticate_bearer(token).via_cookie
    assert tokens.authenticate_bearer(token, via_cookie=True).via_cookie
    assert not tokens.authenticate_bearer(token).via_cookie


def test_with_no_room_every_use_is_verified() -> None:
    tokens = service(max_verified=0)
    token = tokens.issue_session("alice", "Alice")
    assert tokens.authenticate_bearer(token).id == "alice"
    assert len(tokens.verified) == 0


async def test_a_key_removed_from_the_application_s_set_is_not_accepted_from_memory(
    tmp_path: Path,
) -> None:
    old, new, jwks = old_and_new(tmp_path)
    app = AppTokens(jwks_file=jwks, min_refetch=0)
    tokens = TokenService(SECRET, api_keys={}, session_ttl=600, ticket_ttl=60, app_tokens=app)
    await tokens.start()
    token = old.mint("u1")
    assert (await tokens.authenticate(token)).id == "u1"
    assert len(tokens.verified) == 1
    await app.refresh()  # the same set again: what was verified stays
    assert tokens.authenticate_bearer(token).id == "u1" and len(tokens.verified) == 1
    jwks.write_text(json.dumps(json.loads(new.jwks_file.read_text())))
    await app.refresh()  # the old key left the set
    with pytest.raises(KeysMissing):
        tokens.authenticate_bearer(token)
    assert len(tokens.verified) == 0
