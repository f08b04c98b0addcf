"""What a notification holds: the checks of the fields a service sends, and the JSON clients get."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidInput
from ..store.models import Notification

MAX_TITLE = 200
MAX_BODY = 4000
MAX_URL = 2048


def notification_json(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "user": n.user_id,
        "title": n.title,
        "body": n.body,
        "url": n.url,
        "created_at": n.created_at,
        "read_at": n.read_at,
    }


def checked_text(body: dict[str, Any], name: str, limit: int, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        what = "a non-empty string" if required else "a string"
        raise InvalidInput(f"{name} must be {what}", code="invalid_notification")
    if len(value) > limit:
        raise InvalidInput(f"{name} is over {limit} characters", code="invalid_notification")
    if "\x00" in value:  # no database text type holds it (PostgreSQL refuses it)
        raise InvalidInput(f"{name} holds a NUL character", code="invalid_notification")
    return value.strip()


def checked_url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_URL or "\x00" in value:
        raise InvalidInput("url must be a string of at most 2048 characters", code="invalid_url")
    if any(ch < " " or ch == "\x7f" for ch in value):
        # A browser drops tabs and newlines anywhere in a URL (`/<tab>/host` is `//host`, another
        # site), and so does urlsplit: the URL checked would not be the one followed.
        raise InvalidInput("url has control characters", code="invalid_url")
    parts = urlsplit(value)
    # Only links a page can safely follow: http(s) or a path on this site (never javascript:).
    if parts.scheme not in ("http", "https", "") or (
        # A path on this site: `//host` and `/\host` are other sites to a browser.
        not parts.scheme and (not value.startswith("/") or value[1:2] in ("/", "\\"))
    ):
        raise InvalidInput("url must be http(s) or a path starting with /", code="invalid_url")
    return value
