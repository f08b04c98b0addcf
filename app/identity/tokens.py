"""Who presents a credential: a service's API key, a session token or an application token.

A session token is signed with the server's secret (a guest sign-in; it and tickets are
app/identity/owntokens.py); an application token is signed by the embedding service's backend
(app/identity/apptokens.py). Either is what a signed-in person presents (header, cookie, WebSocket
subprotocol, the `auth` and `refresh` ops).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import jwt

from ..errors import Unauthorized, Unavailable
from .apptokens import AppTokens, KeysMissing
from .names import normalise_name
from .owntokens import ALGORITHM, CLOCK_SKEW, OwnTokens
from .principal import PERSON_ID_RULE, Principal, is_person_id
from .revocation import Revocations
from .scopes import scopes_from_claim, split_key
from .tickets import MemoryTicketClaims, TicketClaims
from .verified import KnownCaller, VerifiedTokens


class TokenService(OwnTokens):
    def __init__(
        self,
        secret: str,
        *,
        api_keys: dict[str, str],
        session_ttl: float,
        ticket_ttl: float,
        revocations: Revocations | None = None,
        tickets: TicketClaims | None = None,
        app_tokens: AppTokens | None = None,
        max_verified: int = 10_000,
    ) -> None:
        self._secret = secret
        self._api_keys: list[tuple[bytes, Principal]] = []
        """Each key and the service it names (one immutable Principal, given to every request)."""
        for name, value in api_keys.items():
            key, scopes = split_key(value)
            self._api_keys.append((key.encode(), Principal("service", name, name, scopes=scopes)))
        self._session_ttl = session_ttl
        self._ticket_ttl = ticket_ttl
        if revocations is None:
            revocations = Revocations(session_ttl + CLOCK_SKEW)
        self.revocations = revocations
        self._tickets = MemoryTicketClaims() if tickets is None else tickets
        self.app_tokens = AppTokens() if app_tokens is None else app_tokens
        self.verified = VerifiedTokens(max_verified)
        """People's tokens verified already (a poller presents the same one every poll)."""

    async def start(self) -> None:
        await self.revocations.start()
        if self.app_tokens.has_keys_source:
            await self.app_tokens.refresh()

    async def stop(self) -> None:
        await self.revocations.stop()

    def watch(self, principal: Principal, end: Callable[[], None]) -> Callable[[], None]:
        """Call `end` when the principal's credential expires or the person is signed out (an
        SSE stream ends then); returns the function that stops watching."""
        timer = None
        if principal.expires_at is not None:
            delay = max(0.0, principal.expires_at - time.time())
            timer = asyncio.get_running_loop().call_later(delay, end)
        revocations = self.revocations

        def revoked() -> None:
            if revocations.is_revoked(principal.id, principal.issued_at):
                end()

        unwatch: Callable[[], None] | None = None
        check: asyncio.Handle | None = None
        if principal.is_user:
            unwatch = revocations.watch(principal.id, revoked)
            # A sign-out may have landed since the credential was checked.
            check = asyncio.get_running_loop().call_soon(revoked)

        def stop() -> None:
            for handle in (timer, check):
                if handle is not None:
                    handle.cancel()
            if unwatch is not None:
                unwatch()

        return stop

    def service_for_key(self, key: str) -> Principal | None:
        """The service whose API key this is, compared in constant time."""
        candidate = key.encode()
        for expected, service in self._api_keys:
            if hmac.compare_digest(candidate, expected):
                return service
        return None

    def authenticate_bearer(self, token: str, *, via_cookie: bool = False) -> Principal:
        """A service API key, a session token or an application token, without I/O.

        Raises KeysMissing when an application token names a key not fetched yet: `authenticate`
        fetches it and retries.
        """
        verified = self.verified
        if verified.keys_version != self.app_tokens.keys_version:
            verified.forget_all(self.app_tokens.keys_version)
        # The cache first: a person polling pays one dict lookup, not the keys' compare. Only
        # verified people's tokens are in it, so it never answers for an API key.
        principal = verified.get(token, time.time())
        if principal is None:
            service = self.service_for_key(token)
            if service is not None:
                return service
            claims, own = self._decode_person(token)
            if claims.get("typ") == "ticket":
                raise Unauthorized("a ticket is not a session token", code="invalid_token")
            principal = self._person(claims, via_cookie=via_cookie, guest=own)
            verified.put(token, principal, int(claims["exp"]))
        elif principal.via_cookie != via_cookie:
            principal = replace(principal, via_cookie=via_cookie)
        if self.revocations.is_revoked(principal.id, principal.issued_at):
            raise Unauthorized("this session was signed out", code="token_revoked")
        return principal

    def authenticate_now(self, token: str, *, via_cookie: bool = False) -> Principal:
        """`authenticate` without awaiting (the quick lane): old keys are refetched in the
        background; raises KeysMissing when the token's key must be fetched first."""
        if self.app_tokens.stale():
            self.app_tokens.refresh_soon()
        return self.authenticate_bearer(token, via_cookie=via_cookie)

    def know(
        self, authorization: bytes | None, cookie: bytes | None, principal: Principal
    ) -> KnownCaller:
        """What a connection keeps of a caller just verified from these header values."""
        # `exp` as an integer (as `VerifiedTokens` compares it), held as a float: compared with
        # `time.time()` at every poll, an int past 2**30 costs a conversion each time.
        expires = None if principal.expires_at is None else float(int(principal.expires_at))
        return KnownCaller(authorization, cookie, principal, expires, self.app_tokens.keys_version)

    def recall(self, known: KnownCaller) -> Principal | None:
        """The principal a connection's known caller still is; None when its credential must be
        verified again (expired, signed out, the application's key set changed or due a
        refetch): what `authenticate_now` checks of a token it has verified before."""
        app = self.app_tokens
        if known.keys_version != app.keys_version or app.stale():
            return None
        expires = known.expires
        if expires is not None and expires <= time.time():
            return None
        principal = known.principal
        revocations = self.revocations
        # Asked for emptiness first, as a long poll's answer does (app/web/poll.py).
        if (
            revocations.not_before
            and principal.kind == "user"
            and revocations.is_revoked(principal.id, principal.issued_at)
        ):
            return None
        return principal

    def check_standing(self, principal: Principal) -> None:
        """Raises Unauthorized when a credential verified earlier has expired or been signed out
        since: a long poll's answer after its wait is refused then, so no event reaches a
        session after its sign-out."""
        if principal.expires_at is not None and principal.expires_at <= time.time():
            raise Unauthorized("credentials expired", code="token_expired")
        if principal.is_user and self.revocations.is_revoked(principal.id, principal.issued_at):
            raise Unauthorized("this session was signed out", code="token_revoked")

    async def authenticate(self, token: str, *, via_cookie: bool = False) -> Principal:
        """`authenticate_bearer`, fetching the application's keys when they are missing or old."""
        try:
            return self.authenticate_now(token, via_cookie=via_cookie)
        except KeysMissing:
            await self.app_tokens.refresh()
        try:
            return self.authenticate_bearer(token, via_cookie=via_cookie)
        except KeysMissing:
            if self.app_tokens.failing:
                raise Unavailable(
                    "the application's signing keys cannot be fetched", retry_after=5
                ) from None
            raise

    def _person(self, claims: dict[str, Any], *, via_cookie: bool, guest: bool) -> Principal:
        try:
            scopes = scopes_from_claim(claims.get("channels"))
            issued_at = float(claims.get("iat") or 0)
            expires_at = float(claims["exp"])
        except (TypeError, ValueError):
            raise Unauthorized("invalid credentials", code="invalid_token") from None
        if expires_at > time.time() + self._session_ttl + CLOCK_SKEW:
            raise Unauthorized("token lives longer than the session limit", code="invalid_token")
        if not issued_at <= time.time() + CLOCK_SKEW:  # also NaN: it would escape revocation
            raise Unauthorized("iat is in the future", code="invalid_token")
        sub = str(claims["sub"])
        if not is_person_id(sub):
            # Their channel is user:<sub>: a sub no channel can be named after is refused here,
            # not left to fail (or be unreadable) wherever that channel is used.
            raise Unauthorized(f"sub must match {PERSON_ID_RULE}", code="invalid_token")
        name = normalise_name(str(claims.get("name") or "")) or sub
        return Principal(
            "user",
            sub,
            name,
            via_cookie,
            expires_at=expires_at,
            issued_at=issued_at,
            scopes=scopes,
            guest=guest,
        )

    def _decode_person(self, token: str) -> tuple[dict[str, Any], bool]:
        """Our own session token (a guest's: True), else the application's (when one is
        configured)."""
        app = self.app_tokens
        if not app.configured:
            return self._decode_own(token), True
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("invalid credentials", code="invalid_token") from None
        if header.get("alg") != ALGORITHM:
            return app.decode(token, header), False
        try:
            return self._decode_own(token), True
        except Unauthorized as exc:
            if exc.code == "token_expired" or not app.accepts_hs256():
                raise
        return app.decode(token, header), False
