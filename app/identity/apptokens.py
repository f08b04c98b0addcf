"""Connection tokens signed by the embedding application's backend (docs/tokens.md).

HS256 with a shared secret, or RS256/ES256 with public keys from a JWKS (URL or file). Keys are
cached; a token naming an unknown key id makes the next async check refetch the set (at most once
per `min_refetch` seconds), which is how a rotated key is picked up; the set is also refetched
when older than `cache_ttl`. Verification itself never does I/O, so the poll lane can use it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt

if TYPE_CHECKING:
    from jwt.types import Options

from ..errors import Unauthorized

log = logging.getLogger(__name__)

ASYMMETRIC = ("RS256", "ES256")
KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}
"""The JWK `kty` each algorithm verifies with: a token naming another kind of key is refused."""
FETCH_TIMEOUT = 5.0


class KeysMissing(Unauthorized):
    """The token names a key this node has not fetched: refetching the JWKS may help."""


class AppTokens:
    def __init__(
        self,
        *,
        secret: str = "",
        jwks_url: str = "",
        jwks_file: Path | None = None,
        issuer: str = "",
        audience: str = "",
        cache_ttl: float = 300,
        min_refetch: float = 10,
    ) -> None:
        self._secret = secret
        self._jwks_url = jwks_url
        self._jwks_file = jwks_file
        self._issuer = issuer or None
        self._audience = audience or None
        self._cache_ttl = cache_ttl
        self._min_refetch = min_refetch
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._attempted_at = -float("inf")
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None
        self.keys_version = 0
        """Bumped whenever a fetch changes the key set (tokens verified before are re-verified)."""
        self._fetched: dict[str, Any] | None = None
        self.failing = False
        """The last fetch of the key set failed: a missing key may be an outage, not a bad token."""

    @property
    def has_keys_source(self) -> bool:
        return bool(self._jwks_url or self._jwks_file)

    @property
    def configured(self) -> bool:
        return bool(self._secret) or self.has_keys_source

    def accepts_hs256(self) -> bool:
        return bool(self._secret)

    def decode(self, token: str, header: dict[str, Any]) -> dict[str, Any]:
        """The verified claims, or Unauthorized (KeysMissing: the key is not cached yet)."""
        alg = header.get("alg")
        if alg == "HS256" and self._secret:
            key: Any = self._secret
        elif alg in ASYMMETRIC and self.has_keys_source:
            kid = header.get("kid")
            jwk = self._keys.get(kid) if kid is not None else _only(self._keys)
            if jwk is None:
                raise KeysMissing("unknown signing key", code="invalid_token")
            if jwk.key_type != KEY_TYPES[alg]:
                raise Unauthorized("invalid credentials", code="invalid_token")
            key = jwk.key
        else:
            raise Unauthorized("invalid credentials", code="invalid_token")
        options: Options = {
            "require": ["exp", "sub"],
            "verify_aud": bool(self._audience),
            "verify_iat": False,  # revocation's business (see tokens.py), not a validity check
        }
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[alg],
                options=options,
                audience=self._audience,
                issuer=self._issuer,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("credentials expired", code="token_expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid credentials", code="invalid_token") from None

    def stale(self) -> bool:
        return self.has_keys_source and time.time() - self._fetched_at > self._cache_ttl

    def refresh_soon(self) -> None:
        """Refetch in the background (an old set still verifies meanwhile)."""
        if self._lock.locked() or self._background is not None:
            return
        self._background = asyncio.get_running_loop().create_task(self.refresh())
        self._background.add_done_callback(self._refreshed)

    def _refreshed(self, task: asyncio.Task[None]) -> None:
        self._background = None

    async def refresh(self) -> None:
        """Refetch the key set, unless it was tried within `min_refetch` seconds."""
        async with self._lock:
            now = time.monotonic()
            if now - self._attempted_at < self._min_refetch:
                return
            self._attempted_at = now
            try:
                data = await asyncio.to_thread(self._fetch)
                keys = {jwk.key_id: jwk for jwk in jwt.PyJWKSet.from_dict(data).keys}
            except Exception as exc:
                log.warning("could not fetch the application's JWKS: %s", exc)
                self.failing = True
                return
            self.failing = False
            self._keys = keys
            if data != self._fetched:
                self._fetched = data
                self.keys_version += 1
            self._fetched_at = time.time()

    def _fetch(self) -> dict[str, Any]:
        if self._jwks_file is not None:
            return json.loads(self._jwks_file.read_text())  # type: ignore[no-any-return]
        client = jwt.PyJWKClient(self._jwks_url, cache_jwk_set=False, timeout=FETCH_TIMEOUT)
        return client.fetch_data()  # type: ignore[no-any-return]


def _only(keys: dict[str | None, jwt.PyJWK]) -> jwt.PyJWK | None:
    """A token without `kid` is verified with the set's only key (ambiguous with several)."""
    return next(iter(keys.values())) if len(keys) == 1 else None
