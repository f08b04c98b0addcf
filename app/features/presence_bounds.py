"""How many presence entries this node holds, and for whom: at most `total` in all, and at most
`per_address` arrived from one client address (IPv6 by /64), so that one client (however many
guests it signs up, and however many rooms it polls or subscribes to) cannot take every entry
and leave everyone else untracked."""

from __future__ import annotations

from ..identity.limits import address_key, decrement


class EntryBounds:
    def __init__(self, total: int, per_address: int) -> None:
        self._total = total
        self._per_address = per_address
        self._by_address: dict[str, int] = {}
        self.size = 0
        """(channel, person) entries held (a metric)."""
        self.untracked = 0
        """Arrivals not tracked because the node held `total` entries (a metric)."""
        self.untracked_address = 0
        """Arrivals not tracked because their address held `per_address` entries (a metric)."""

    def admit(self, ip: str) -> str | None:
        """Count one more entry, arrived from `ip`: its address key, or None over a bound."""
        if self.size >= self._total:
            self.untracked += 1
            return None
        address = address_key(ip)
        held = self._by_address.get(address, 0)
        if held >= self._per_address:
            self.untracked_address += 1
            return None
        self._by_address[address] = held + 1
        self.size += 1
        return address

    def release(self, address: str) -> None:
        self.size -= 1
        decrement(self._by_address, address)
