"""One settings object, read once at start-up and passed down (never imported as a global)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from ..identity.apikeys import read_file
from .budgets import BudgetSettings
from .checks import ApiKeys, CommaList, ServiceUrl, check_coherent
from .connections import ConnectionSettings
from .units import KIB, MIB


class Settings(BudgetSettings, ConnectionSettings):
    """Every knob of the service, from `FOURCAST_*` environment variables.

    The defaults are the limits of the wire contract; one machine needs none of them set. What
    values must meet beyond their bounds is app/settings/checks.py; two areas are in modules of
    their own (app/settings/budgets.py, app/settings/connections.py).
    """

    model_config = SettingsConfigDict(env_prefix="FOURCAST_", extra="ignore", frozen=True)

    # Where things live
    data_dir: Path = Path("var")
    database_url: ServiceUrl = ""
    redis_url: ServiceUrl = ""
    secret_key: str = ""
    api_keys: ApiKeys = Field(default_factory=dict)
    allowed_origins: CommaList = ()
    trusted_proxies: CommaList = ()
    migrate_on_start: bool = True
    """Apply pending migrations at start-up (turn off where `make migrate` runs separately)."""

    # Event log
    history_size: int = Field(1000, ge=1, le=1_000_000)
    max_event_bytes: int = Field(64 * KIB, ge=256, le=16 * MIB)
    max_body_bytes: int = Field(64 * KIB, ge=256, le=16 * MIB)
    max_ws_message_bytes: int = Field(64 * KIB, ge=256, le=16 * MIB)
    idempotency_ttl: float = Field(24 * 3600, gt=0)
    commit_linger_ms: float = Field(1.0, ge=0, le=100)
    commit_max_batch: int = Field(1000, ge=1, le=100_000)
    max_pending_publishes: int = Field(20_000, ge=1)
    """Publishes waiting for a group commit; past it (or past the bytes) a publish gets 503."""
    max_pending_publish_bytes: int = Field(64 * MIB, ge=64 * KIB)

    # Delivery
    queue_max_events: int = Field(1000, ge=1)
    queue_max_bytes: int = Field(1 * MIB, ge=1 * KIB)
    poll_default_limit: int = Field(50, ge=1, le=1000)
    poll_max_limit: int = Field(1000, ge=1, le=100_000)
    long_poll_max_wait: float = Field(60, ge=1, le=3600)
    sse_retry_ms: int = Field(2000, ge=0)
    sse_keepalive: float = Field(15, gt=0)
    sse_send_timeout: float = Field(10, gt=0)
    ws_send_timeout: float = Field(10, gt=0)
    ws_stall_timeout: float = Field(30, gt=0, le=3600)
    """Seconds a WebSocket's writing may stay paused (its peer reads nothing), then the socket
    is aborted, closing or not, pings or none (app/server/stalled.py)."""
    heartbeat: float = Field(25, gt=0)
    http_keep_alive: float = Field(5, gt=0, le=3600)
    """Seconds an idle keep-alive HTTP connection stays open (with `python -m app`)."""
    heartbeat_grace: float = Field(20, gt=0)

    # People and abuse
    publish_rate: float = Field(10, gt=0)
    publish_burst: int = Field(20, ge=1)
    publish_address_rate: float = Field(50, gt=0)
    """People's publishes per client address (IPv6 by /64) per second, on each node: each guest
    has a publish budget of its own, and one address may sign many guests up."""
    publish_address_burst: int = Field(100, ge=1)
    max_connections_per_user: int = Field(20, ge=1)
    max_connections_per_ip: int = Field(200, ge=1)
    max_connections: int = Field(20_000, ge=1)
    session_ttl: float = Field(7 * 24 * 3600, gt=0)
    max_revocations: int = Field(500_000, ge=1)
    """People whose sign-out is held (each for `session_ttl` plus a minute, about 200 bytes):
    past it a new person's sign-out is refused (503), never an earlier one forgotten."""
    guest_revocation_share: float = Field(0.8, gt=0, le=1)
    """Guest sign-ups are refused (503) while the sign-outs held plus the guests who may still
    sign out (signed up within `session_ttl` plus a minute) reach this share of
    `max_revocations`: guests cannot fill it, and the rest is kept for other people's."""
    ticket_ttl: float = Field(60, gt=0)
    ws_permessage_deflate: bool = False
    ws_upgrades_enabled: bool = True
    sse_enabled: bool = True
    cookie_secure: bool = False

    # Identity: public URL, embedding applications' tokens, API key files
    public_url: str = ""
    """The URL people reach the service at (behind a proxy): its origin is allowed, and an https
    URL makes the session cookie `Secure`."""
    api_keys_file: Path | None = None
    """More API keys, one `name:key[:scopes]` a line (`#` comments), as in FOURCAST_API_KEYS."""
    app_token_secret: str = ""
    """HS256 secret of the embedding application's backend, for its connection tokens."""
    app_jwks_url: str = ""
    app_jwks_file: Path | None = None
    """RS256/ES256 public keys of the embedding application (a JWKS), by URL or file."""
    app_token_issuer: str = ""
    app_token_audience: str = ""
    app_jwks_cache_ttl: float = Field(300, gt=0)
    app_jwks_min_refetch: float = Field(10, ge=0)
    """At most one JWKS fetch per this many seconds, however many unknown key ids arrive."""
    guest_signin: Literal["auto", "true", "false"] = "auto"
    """Whether `POST /api/session` signs guests in (the demo pages' people). `auto`: only when
    no embedding application's key is set, whose tokens are then the only way to be someone."""

    @property
    def app_tokens(self) -> bool:
        """Whether an embedding application vouches for people: any valid `sub` is someone."""
        return bool(self.app_token_secret or self.app_jwks_url or self.app_jwks_file)

    @property
    def guests_allowed(self) -> bool:
        if self.guest_signin != "auto":
            return self.guest_signin == "true"
        return not self.app_tokens

    # Chat
    presence_lease: float = Field(30, gt=0)
    typing_throttle: float = Field(2, ge=0)
    typing_expiry: float = Field(3, gt=0)

    # Observability
    metrics_per_delivery: bool = True
    """Count deliveries and sample delivery latency (one write in 256; see /metrics)."""

    # Shutdown
    drain_timeout: float = Field(5, ge=0)

    # The benchmark on /compare
    bench_results: Path | None = None
    """The results file /compare charts; unset: bench/results/latest.json beside the code."""

    # Polls by signed-in readers
    max_verified_tokens: int = Field(10_000, ge=0)
    """People's tokens kept verified in memory (a poller presents the same one every poll);
    revocation and expiry are still checked on every use. 0: verify every time."""
    redis_tail_events: int = Field(256, ge=0, le=100_000)
    """On Redis, the newest events kept per channel this node listens to, so that polls near
    the head are answered from memory (at most history_size; 0: every poll reads Redis)."""
    redis_tail_max_bytes: int = Field(64 * MIB, ge=64 * KIB)
    """On Redis, the bytes of events those tails hold together (the oldest go first past it):
    events are up to `max_event_bytes` each, and a node listens to up to `bus_max_channels`."""
    redis_command_timeout: float = Field(1.5, gt=0, le=60)
    """On Redis, seconds before a command, a connect or the wait for a pooled connection fails
    (503): raise it where Redis is across a slow network; each outage costs one such wait."""
    redis_stream_idle_seconds: float = Field(7 * 24 * 3600, ge=0)
    """On Redis, a channel's stream is deleted this long after its last publish (0: never), so
    channels no longer used do not hold Redis memory for good; a reader resuming after it gets a
    `reset` (docs/scaling.md)."""

    # Durability on Redis
    archive_max_queued: int = Field(100_000, ge=1)
    """Events acknowledged on Redis but not yet in the SQL archive before publishes get 503."""
    archive_flush_timeout: float = Field(30, ge=0)
    """Seconds a stopping node keeps flushing its archive queue to SQL."""
    archive_linger_ms: float = Field(250, ge=0, le=10_000)
    """How long, after the oldest event waiting, the archive gathers acknowledged events into one
    SQL transaction: at a trickle of publishes, a transaction per event costs a node more than
    its Redis round trips."""
    ack_after_journal: bool = False
    """On Redis, acknowledge a publish only once it is also in the SQL journal (slower, but the
    201 then survives the loss of Redis data; see docs/operations.md)."""

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        check_coherent(self)
        return self

    def all_api_keys(self) -> dict[str, str]:
        """FOURCAST_API_KEYS and the keys file together (name -> `key[:scopes]`)."""
        extra = read_file(self.api_keys_file) if self.api_keys_file is not None else {}
        return {**self.api_keys, **extra}

    @property
    def public_origin(self) -> str:
        """The scheme://host[:port] of `public_url` ("" when unset)."""
        scheme, sep, rest = self.public_url.partition("://")
        return f"{scheme}{sep}{rest.split('/', 1)[0]}" if sep else ""

    @property
    def secure_cookies(self) -> bool:
        return self.cookie_secure or self.public_url.startswith("https://")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'fourcast.db'}"

    def resolved_secret_key(self) -> str:
        """The configured secret, or one generated once and kept under `data_dir`."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


class SettingsError(SystemExit):
    """Bad configuration: a readable list of what is wrong, naming the environment variables."""


def load_settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            name = f"FOURCAST_{field.upper()}" if error["loc"] else "settings"
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"  {name}: {message}")
        raise SettingsError("fourcast: invalid settings\n" + "\n".join(lines)) from None
