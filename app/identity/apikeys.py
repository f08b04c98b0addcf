"""API keys: `name:key` (every channel) or `name:key:scopes` (only those channels), from
FOURCAST_API_KEYS (comma-separated) and FOURCAST_API_KEYS_FILE (one a line, `#` comments)."""

from __future__ import annotations

from pathlib import Path

from .scopes import split_key

MIN_KEY_LENGTH = 16


def parse_entries(items: list[str]) -> dict[str, str]:
    """name -> `key` or `key:scopes`; ValueError names the bad entry (never the key)."""
    keys: dict[str, str] = {}
    for number, item in enumerate(items, 1):
        name, sep, value = item.partition(":")
        if not sep or not name or not value:
            # No name to report: what stands before the first colon may be the key itself.
            raise ValueError(f"API key entry {number} is not name:key[:scopes]")
        if name in keys:
            raise ValueError(
                f"API key name {name!r} is given twice: each key needs its own name (to rotate "
                "one, add the new key under another name, then remove the old one)"
            )
        try:
            key, _ = split_key(value)
        except ValueError as exc:
            raise ValueError(f"API key {name!r}: {exc}") from None
        if len(key) < MIN_KEY_LENGTH:
            raise ValueError(f"API key for {name!r} must be at least {MIN_KEY_LENGTH} characters")
        keys[name] = value
    return keys


def parse_env(value: str) -> dict[str, str]:
    return parse_entries([part.strip() for part in value.split(",") if part.strip()])


def read_file(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return parse_entries([line for line in lines if line and not line.startswith("#")])
