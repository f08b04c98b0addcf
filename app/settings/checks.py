"""The rules FOURCAST_* values must meet beyond each one's bounds (app/settings/__init__.py).

Lists and keys are parsed from their environment form, URLs must name a supported scheme, and
settings that depend on one another must agree. Each failure is a ValueError naming the variable,
so that `load_settings` can list every mistake at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, BeforeValidator, ValidationInfo
from pydantic_settings import NoDecode
from sqlalchemy.engine import make_url

from ..identity.apikeys import parse_env, read_file

if TYPE_CHECKING:
    from . import Settings

MIN_SECRET_BYTES = 32
ENVELOPE_BYTES = 1024
"""More than an event's encoding adds to its data (cursor, channel, type, sender, time)."""
URL_SCHEMES = {
    "database_url": ("sqlite+aiosqlite://", "postgresql+asyncpg://"),
    "redis_url": ("redis://", "rediss://", "unix://"),
}


def _parse_api_keys(value: object) -> object:
    if not isinstance(value, str):
        return value
    return parse_env(value)


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(filter(None, (part.strip().rstrip("/") for part in value.split(","))))
    return value


def _check_scheme(value: str, info: ValidationInfo) -> str:
    field = getattr(info, "field_name", "")
    allowed = URL_SCHEMES[field]
    if value and not value.startswith(allowed):
        raise ValueError(f"{field} must start with one of {', '.join(allowed)}")
    return value


ApiKeys = Annotated[dict[str, str], NoDecode, BeforeValidator(_parse_api_keys)]
"""`name:key[:scopes]` entries, comma-separated in the environment."""
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_list)]
"""Comma-separated in the environment; blanks and trailing slashes dropped."""
ServiceUrl = Annotated[str, AfterValidator(_check_scheme)]
"""A database or Redis URL, of a scheme in URL_SCHEMES (empty: not used)."""


def check_coherent(settings: Settings) -> None:
    """Settings that depend on one another, checked once every value is parsed."""
    if settings.poll_default_limit > settings.poll_max_limit:
        raise ValueError("poll_default_limit must not exceed poll_max_limit")
    if settings.max_event_bytes > settings.max_body_bytes:
        raise ValueError("max_event_bytes must fit in max_body_bytes (a publish carries it)")
    if settings.max_event_bytes + ENVELOPE_BYTES > settings.queue_max_bytes:
        # Else the largest event overflows an empty outbox: a stream or socket reading it is
        # cut off, resumes before it, and is cut off again, for ever.
        raise ValueError(
            f"queue_max_bytes must hold the largest event: at least max_event_bytes + "
            f"{ENVELOPE_BYTES} ({settings.max_event_bytes + ENVELOPE_BYTES})"
        )
    _check_sqlite_form(settings.database_url)
    _check_identity(settings)


def _check_sqlite_form(url: str) -> None:
    """A SQLite database named in URI form (`file:...`, `?uri=true`) is refused: the one-writer
    lock and the journal's writer need the file's path, and without them two processes on one
    file would hand out the same cursors."""
    if not url.startswith("sqlite"):
        return
    parsed = make_url(url)
    if (parsed.database or "").startswith("file:") or "uri" in parsed.query:
        raise ValueError(
            "FOURCAST_DATABASE_URL: SQLite URI forms (file:..., ?uri=true) are not supported; "
            "give the file's path, e.g. sqlite+aiosqlite:////var/lib/fourcast/fourcast.db"
        )


def _check_identity(settings: Settings) -> None:
    for name in ("secret_key", "app_token_secret"):
        value: str = getattr(settings, name)
        if value and len(value.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"FOURCAST_{name.upper()} must be at least {MIN_SECRET_BYTES} bytes "
                f"(got {len(value.encode())}): use e.g. 48 random characters"
            )
    if settings.app_token_secret and settings.app_token_secret == settings.secret_key:
        raise ValueError(
            "FOURCAST_APP_TOKEN_SECRET must differ from FOURCAST_SECRET_KEY: the application "
            "may vouch for its people, not sign fourcast's own tickets"
        )
    if settings.redis_url and not settings.secret_key:
        raise ValueError(
            "FOURCAST_REDIS_URL is set (several nodes) but FOURCAST_SECRET_KEY is not: "
            "every node must sign with the same configured secret"
        )
    if settings.api_keys_file is not None:
        try:
            from_file = read_file(settings.api_keys_file)
        except OSError as exc:
            raise ValueError(f"FOURCAST_API_KEYS_FILE cannot be read: {exc}") from None
        both = sorted(set(from_file) & set(settings.api_keys))
        if both:
            raise ValueError(
                f"API key names in both FOURCAST_API_KEYS and FOURCAST_API_KEYS_FILE: {both}"
            )
    if settings.public_url and not settings.public_url.startswith(("http://", "https://")):
        raise ValueError("FOURCAST_PUBLIC_URL must start with http:// or https://")
    if settings.app_jwks_file is not None and not settings.app_jwks_file.is_file():
        raise ValueError(f"FOURCAST_APP_JWKS_FILE: no such file {settings.app_jwks_file}")
    if settings.app_jwks_url and not settings.app_jwks_url.startswith(("http://", "https://")):
        raise ValueError("FOURCAST_APP_JWKS_URL must start with http:// or https://")
