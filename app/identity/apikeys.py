"""API keys: `name:key` (every channel) or `name:key:scopes` (only those channels), from
FOURCAST_API_KEYS (comma-separated) and FOURCAST_API_KEYS_FILE (one a line, `#` comments)."""

from __future__ import annotations

from pathlib import Path

from .scopes import split_key

MIN_KEY_LENGTH = 16


def parse_entries(items: list[str]) -> dict[str, str]:
    """name -> `key` or `key:scopes`; ValueError names the bad entry (never the key)."""
    keys: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name or not value:
            raise ValueError(f"API key entries must be name:key[:scopes], got {name!r}")
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
