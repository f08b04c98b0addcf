"""Channel scopes: the channels an API key is limited to, or a person's token grants beyond the
namespace rules (app/identity/policy.py).

A pattern is a channel name (`public:prices`), a prefix ending in `*` (`public:prices*`,
`user:*`), or `*` for every channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PATTERN_RE = re.compile(r"[A-Za-z0-9_.:-]{0,128}\*?")
NAMESPACE_PREFIXES = ("room:", "user:", "public:", "*")


@dataclass(frozen=True, slots=True)
class Scopes:
    read: tuple[str, ...] = ()
    publish: tuple[str, ...] = ()

    def may_read(self, channel: str) -> bool:
        return any(matches(pattern, channel) for pattern in self.read)

    def may_publish(self, channel: str) -> bool:
        return any(matches(pattern, channel) for pattern in self.publish)


def matches(pattern: str, channel: str) -> bool:
    if pattern.endswith("*"):
        return channel.startswith(pattern[:-1])
    return pattern == channel


def check_pattern(pattern: object) -> str:
    if not isinstance(pattern, str) or not pattern or not PATTERN_RE.fullmatch(pattern):
        raise ValueError(f"bad channel pattern {str(pattern)[:60]!r} (a channel, prefix* or *)")
    return pattern


def parse_scopes(text: str) -> Scopes:
    """`read=P|publish=P|P` (a bare P is both), e.g. `publish=public:prices*|read=public:*`."""
    read: list[str] = []
    publish: list[str] = []
    for item in filter(None, (part.strip() for part in text.split("|"))):
        kind, sep, pattern = item.partition("=")
        if not sep:
            kind, pattern = "", item
        if kind not in ("", "read", "publish"):
            raise ValueError(f"scope must be read=PATTERN, publish=PATTERN or PATTERN: {item!r}")
        check_pattern(pattern)
        if kind in ("", "read"):
            read.append(pattern)
        if kind in ("", "publish"):
            publish.append(pattern)
    return Scopes(tuple(read), tuple(publish))


def looks_like_scopes(text: str) -> bool:
    """Whether the text after a key's second `:` is a scope list (else it is part of the key)."""
    items = [part.strip() for part in text.split("|") if part.strip()]
    if not items:
        return False
    for item in items:
        kind, sep, _ = item.partition("=")
        if sep and kind in ("read", "publish"):
            continue
        if sep or not item.startswith(NAMESPACE_PREFIXES):
            return False
    try:
        parse_scopes(text)
    except ValueError:
        return False
    return True


def split_key(value: str) -> tuple[str, Scopes | None]:
    """An API key setting's value: `key` (every channel) or `key:scopes`."""
    key, sep, rest = value.partition(":")
    if sep and looks_like_scopes(rest):
        return key, parse_scopes(rest)
    return value, None


def scopes_from_claim(value: object) -> Scopes | None:
    """A token's `channels` claim: `{"read": [patterns], "publish": [patterns]}`."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("channels must be an object with read and publish lists")
    lists: dict[str, tuple[str, ...]] = {}
    for kind in ("read", "publish"):
        patterns = value.get(kind, [])
        if not isinstance(patterns, list) or len(patterns) > 100:
            raise ValueError(f"channels.{kind} must be a list of at most 100 patterns")
        lists[kind] = tuple(check_pattern(p) for p in patterns)
    return Scopes(lists["read"], lists["publish"])


def scopes_claim(scopes: Scopes | None) -> dict[str, list[str]] | None:
    if scopes is None:
        return None
    return {"read": list(scopes.read), "publish": list(scopes.publish)}
