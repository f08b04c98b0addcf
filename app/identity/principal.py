"""The identity a request or connection acts as."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, TypeGuard

from .scopes import Scopes

Kind = Literal["user", "service", "anonymous"]

PERSON_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
PERSON_ID_RULE = "^[A-Za-z0-9_.:-]{1,64}$"
"""A person's id names their channel, `user:<id>`: it is made of what a channel name may hold."""


def is_person_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and PERSON_ID_RE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Kind
    id: str
    name: str
    via_cookie: bool = False
    """Authenticated by the browser's session cookie: subject to the Origin check."""
    expires_at: float | None = None
    """When the credential stops being valid (epoch seconds); None for API keys."""
    issued_at: float = 0.0
    """When the credential was issued (epoch seconds): revocation refuses older ones."""
    scopes: Scopes | None = None
    """A service: the channels its key is limited to (None: all). A person: channels their
    token grants beyond the namespace rules."""
    via_ticket: bool = False
    """Authenticated by a single-use ticket, which cannot be exchanged for another."""
    guest: bool = False
    """Signed in by fourcast's own session token: a guest, counted by the guest room from its
    sign-up (`issued_at`) until its first sign-out (app/identity/guestroom.py)."""

    @property
    def sender(self) -> str:
        """The event `from` field: `user:<id>` or `service:<name>`."""
        return f"{self.kind}:{self.id}"

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

    @property
    def is_service(self) -> bool:
        return self.kind == "service"

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"

    def public(self) -> dict[str, str] | None:
        if self.kind == "anonymous":
            return None
        return {"id": self.id, "name": self.name, "kind": self.kind}


ANONYMOUS = Principal("anonymous", "", "")
