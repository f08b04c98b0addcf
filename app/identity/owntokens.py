"""Fourcast's own tokens, HS256 JWTs signed with the server's secret (the embedding application's
are app/identity/apptokens.py).

A session token is what a guest sign-in gives. A ticket is for the one case where neither header
nor cookie can be sent (a cross-origin EventSource): short-lived, single-use on every node, never
outliving the credential it was made from, and never exchangeable for another ticket.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt

from ..errors import Unauthorized, Unavailable
from .principal import Principal
from .scopes import scopes_claim, scopes_from_claim

if TYPE_CHECKING:
    from .revocation import Revocations
    from .tickets import TicketClaims

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
CLOCK_SKEW = 60
"""Seconds an application token may live beyond `session_ttl` (revocations are kept that long)."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """A ticket checked, not yet spent: spent (`spend_ticket`) only by a request that is going
    to be served, so a refused one (a bad cursor, a HEAD) leaves it usable; a poll refused only
    as it is answered gives it back (`give_back_ticket`)."""

    principal: Principal
    jti: str
    keep_until: float


class OwnTokens:
    """Mixed into `TokenService`, which holds the state named below."""

    _secret: str
    _session_ttl: float
    _ticket_ttl: float
    _tickets: TicketClaims
    revocations: Revocations

    @property
    def ticket_claims(self) -> TicketClaims:
        """Where used tickets are remembered (in the database, its `rows` are a metric)."""
        return self._tickets

    def issue_session(self, user_id: str, name: str, signed_up: float | None = None) -> str:
        """A guest's token; `iat` is its sign-up (when the guest room counted it), by which its
        first sign-out takes it out of that count again."""
        now = time.time() if signed_up is None else signed_up
        claims = {
            "sub": user_id,
            "name": name,
            # Unrounded: a token issued just before a sign-out is revoked by it, and one issued
            # just after is not.
            "iat": now,
            "exp": int(now + self._session_ttl),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def issue_ticket(self, principal: Principal) -> str:
        if principal.via_ticket:
            raise Unauthorized("a ticket cannot be exchanged for another ticket")
        now = int(time.time())
        exp = now + int(self._ticket_ttl)
        if principal.expires_at is not None:
            exp = min(exp, int(principal.expires_at))
        claims: dict[str, Any] = {
            "sub": principal.id,
            "name": principal.name,
            "kind": principal.kind,
            "typ": "ticket",
            "jti": secrets.token_urlsafe(12),
            "iat": now,
            "exp": exp,
            "siat": principal.issued_at,
        }
        if principal.expires_at is not None:
            claims["sexp"] = principal.expires_at
        if principal.scopes is not None:
            claims["channels"] = scopes_claim(principal.scopes)
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def read_ticket(self, ticket: str) -> Ticket:
        """Who a ticket stands for, checked but not spent."""
        claims = self._decode_own(ticket)
        if claims.get("typ") != "ticket":
            raise Unauthorized("not a ticket", code="invalid_ticket")
        kind = claims.get("kind", "user")
        if kind not in ("user", "service"):
            raise Unauthorized("bad ticket", code="invalid_ticket")
        try:
            scopes = scopes_from_claim(claims.get("channels"))
            issued_at = float(claims.get("siat") or 0)
            expires_at = float(claims["sexp"]) if "sexp" in claims else None
        except (TypeError, ValueError):
            raise Unauthorized("bad ticket", code="invalid_ticket") from None
        principal = Principal(
            kind,
            str(claims["sub"]),
            str(claims.get("name", "")),
            expires_at=expires_at,
            issued_at=issued_at,
            scopes=scopes,
            via_ticket=True,
        )
        if kind == "user" and self.revocations.is_revoked(principal.id, issued_at):
            raise Unauthorized("this session was signed out", code="token_revoked")
        # Remembered past `exp`: a node whose clock lags would still take the ticket for valid.
        return Ticket(principal, str(claims.get("jti", "")), float(claims["exp"]) + CLOCK_SKEW)

    async def spend_ticket(self, ticket: Ticket) -> None:
        """Claim it, once on every node (401 when it was used already)."""
        if not await self._tickets.claim(ticket.jti, ticket.keep_until):
            raise Unauthorized("ticket already used", code="invalid_ticket")

    async def give_back_ticket(self, ticket: Ticket) -> None:
        """Unspend a ticket whose request was refused after spending it (a poll refused as it
        is answered): usable again, on every node. Only the request that spent it may give it
        back; a store that fails leaves it spent (the refusal stands either way)."""
        try:
            await self._tickets.release(ticket.jti)
        except Unavailable as exc:
            log.warning("a refused request's ticket stays spent: %s", exc.message)

    def _decode_own(self, token: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                # `iat` serves revocation only: a node whose clock is behind the signer's must
                # not refuse a fresh token as "not yet valid".
                options={"require": ["exp", "sub"], "verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("credentials expired", code="token_expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid credentials", code="invalid_token") from None
