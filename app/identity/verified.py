"""People's tokens this node has already verified, so a poller's every poll does not check the
same signature again.

Only what cannot change while a token is unexpired is kept: the principal its verified claims
describe. Revocation is still checked on every use (tokens.py), expiry here against the token's
`exp` as the JWT library reads it, and the whole cache is forgotten when the embedding
application's key set changes (a token signed by a key that left the set is not accepted from
memory). Bounded: past `max_entries` the oldest entry makes room (it is verified again if used).
"""

from __future__ import annotations

from dataclasses import dataclass

from .principal import Principal


class VerifiedTokens:
    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._people: dict[str, tuple[Principal, int]] = {}
        self.keys_version = 0
        """The application key set's version the entries were verified with."""

    def __len__(self) -> int:
        return len(self._people)

    def get(self, token: str, now: float) -> Principal | None:
        """The principal `token` was verified as, while it is unexpired at `now`."""
        entry = self._people.get(token)
        if entry is None:
            return None
        principal, expires = entry
        if expires <= now:  # as the JWT library refuses it: `exp` is compared as an integer
            del self._people[token]
            return None
        return principal

    def put(self, token: str, principal: Principal, expires: int) -> None:
        people = self._people
        if self._max <= 0:
            return
        if token not in people and len(people) >= self._max:
            del people[next(iter(people))]
        people[token] = (principal, expires)

    def forget_all(self, keys_version: int) -> None:
        self._people.clear()
        self.keys_version = keys_version


@dataclass(slots=True)
class KnownCaller:
    """Who a keep-alive connection's last poll was, by the credential's raw header values: a
    poller presents the same bytes every poll, and bytes compared cost less than a token
    parsed and looked up (TokenService.recall says whether it still stands)."""

    authorization: bytes | None
    cookie: bytes | None
    principal: Principal
    expires: float | None
    """The credential's `exp` as `VerifiedTokens` compares it (an integer, held as a float);
    None for an API key."""
    keys_version: int
    """The application key set's version when the credential was verified."""
