"""Session tokens and single-use tickets, both HS256 JWTs signed with the server's secret.

A token is what a signed-in person presents (header, cookie, WebSocket subprotocol or auth op).
A ticket is for the one case where neither header nor cookie can be sent (a cross-origin
EventSource): short-lived, single-use, so a URL that leaks into a log is worthless a minute later.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict

import jwt

from ..errors import Unauthorized
from .principal import Principal

ALGORITHM = "HS256"


class TokenService:
    def __init__(
        self,
        secret: str,
        *,
        api_keys: dict[str, str],
        session_ttl: float,
        ticket_ttl: float,
    ) -> None:
        self._secret = secret
        self._api_keys = [(name, key.encode()) for name, key in api_keys.items()]
        self._session_ttl = session_ttl
        self._ticket_ttl = ticket_ttl
        self._used_tickets: OrderedDict[str, float] = OrderedDict()

    def issue_session(self, user_id: str, name: str) -> str:
        now = int(time.time())
        claims = {"sub": user_id, "name": name, "iat": now, "exp": now + int(self._session_ttl)}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def issue_ticket(self, principal: Principal) -> str:
        now = int(time.time())
        claims = {
            "sub": principal.id,
            "name": principal.name,
            "kind": principal.kind,
            "typ": "ticket",
            "jti": secrets.token_urlsafe(12),
            "iat": now,
            "exp": now + int(self._ticket_ttl),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def service_for_key(self, key: str) -> Principal | None:
        """The service whose API key this is, compared in constant time."""
        candidate = key.encode()
        for name, expected in self._api_keys:
            if hmac.compare_digest(candidate, expected):
                return Principal("service", name, name)
        return None

    def authenticate_bearer(self, token: str, *, via_cookie: bool = False) -> Principal:
        """A service API key or a person's session token."""
        service = self.service_for_key(token)
        if service is not None:
            return service
        claims = self._decode(token)
        if claims.get("typ") == "ticket":
            raise Unauthorized("a ticket is not a session token", code="invalid_token")
        return Principal(
            "user",
            str(claims["sub"]),
            str(claims.get("name", "")),
            via_cookie,
            expires_at=float(claims["exp"]),  # type: ignore[arg-type]
        )

    def redeem_ticket(self, ticket: str) -> Principal:
        claims = self._decode(ticket)
        if claims.get("typ") != "ticket":
            raise Unauthorized("not a ticket", code="invalid_ticket")
        jti = str(claims.get("jti", ""))
        now = time.time()
        while self._used_tickets and next(iter(self._used_tickets.values())) < now:
            self._used_tickets.popitem(last=False)
        if jti in self._used_tickets:
            raise Unauthorized("ticket already used", code="invalid_ticket")
        self._used_tickets[jti] = float(str(claims["exp"]))
        kind = claims.get("kind", "user")
        if kind not in ("user", "service"):
            raise Unauthorized("bad ticket", code="invalid_ticket")
        return Principal(kind, str(claims["sub"]), str(claims.get("name", "")))

    def _decode(self, token: str) -> dict[str, object]:
        try:
            return jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("credentials expired", code="token_expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid credentials", code="invalid_token") from None
