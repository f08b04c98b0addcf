"""A poll's parameters, checked: what the poll core (app/web/poll.py) works from."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadParameter
from ..features.presence_polls import Holder
from ..features.presence_shared import LocalMember
from ..identity.principal import Principal


@dataclass(slots=True)
class Ask:
    """One poll's checked parameters and who asks."""

    channel: str
    cursor: int | None
    marker: float
    limit: int
    wait: int
    transport: str
    person: Principal | None
    """A signed-in person following the log whose poll holds a presence lease (not one whose
    connection holds it: `Presence.keep`), else None."""
    reader: str | None
    """Whose read-from-the-start budget the answer spends (budgets.actor_key)."""
    user: str | None
    ip: str
    caller: Principal
    """Who asks: a long poll's answer after its wait checks that their credential still stands."""
    connection: Holder | None = None
    """The keep-alive connection whose presence `Hold` stands for this poll's lease, if any."""
    member: LocalMember | None = None
    """The person's presence entry, as the poll's start renewed it (`Presence.renew`)."""


def int_param(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    # `-?[0-9]+` only: `int` also takes spaces, `_` between digits, a `+` and other scripts'
    # digits (`limit=1_0` would be 10), which no client means as a number.
    digits = raw[1:] if raw[0] == "-" else raw
    try:
        if not (digits.isascii() and digits.isdigit()):
            raise ValueError(raw)
        value = int(raw)  # ValueError past Python's 4,300 digits
    except ValueError:
        raise BadParameter(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise BadParameter(f"{name} must be between {low} and {high}")
    return value


BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def bool_param(name: str, raw: str | None, default: bool = False) -> bool:
    """A yes/no query parameter (`true`/`false`, `1`/`0`, `yes`/`no`, any case); anything else
    is refused, rather than read as no and answered with what was not asked for."""
    if raw is None or raw == "":
        return default
    value = BOOLEANS.get(raw.lower())
    if value is None:
        raise BadParameter(f"{name} must be true or false")
    return value
