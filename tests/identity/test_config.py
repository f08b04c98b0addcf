"""Safe configuration: strong secrets, one shared secret when clustered, the public URL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.settings import Settings
from tests.fixtures.server import ROOT, ServerFactory


def test_settings_refuse_a_short_secret_and_redis_without_a_secret() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Settings(secret_key="bench")
    with pytest.raises(ValueError, match="FOURCAST_SECRET_KEY"):
        Settings(redis_url="redis://127.0.0.1:6379/0")
    assert Settings(redis_url="redis://127.0.0.1:6379/0", secret_key="s" * 32).secret_key
    with pytest.raises(ValueError, match="FOURCAST_APP_TOKEN_SECRET"):
        Settings(app_token_secret="short")
    with pytest.raises(ValueError, match="FOURCAST_APP_JWKS_FILE"):
        Settings(app_jwks_file="/nonexistent/jwks.json")


def test_public_url_gives_the_origin_and_secure_cookies() -> None:
    settings = Settings(public_url="https://chat.example.com/app", secret_key="s" * 48)
    assert settings.public_origin == "https://chat.example.com"
    assert settings.secure_cookies
    assert not Settings(public_url="http://localhost:8000").secure_cookies


async def test_start_up_refuses_a_short_secret_and_redis_without_one(
    start_server: ServerFactory,
) -> None:
    with pytest.raises(RuntimeError) as failed:
        start_server(secret_key="bench")
    assert "FOURCAST_SECRET_KEY must be at least 32 bytes" in str(failed.value)
    assert "Traceback" not in str(failed.value)
    with pytest.raises(RuntimeError) as failed:
        start_server(secret_key="", redis_url="redis://127.0.0.1:1/0")
    assert "FOURCAST_REDIS_URL is set" in str(failed.value)


def test_plain_uvicorn_refuses_a_short_secret_too(tmp_path: object) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "FOURCAST_SECRET_KEY": "bench",
        "FOURCAST_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "FOURCAST_SECRET_KEY must be at least 32 bytes" in done.stderr + done.stdout


async def test_an_https_public_url_makes_the_cookie_secure_and_its_origin_allowed(
    start_server: ServerFactory,
) -> None:
    server = start_server(public_url="https://chat.example.com")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        response = await client.post("/api/session", json={"name": "Ann"})
        assert response.status_code == 201
        cookie = response.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie
        # Strict: a cross-site link or popup carries no session, so another site cannot make a
        # person poll a room (and be seen present there).
        assert "samesite=strict" in cookie
        token = response.json()["token"]
        client.cookies.set("fourcast_session", token)
        proxied = await client.post(
            "/api/channels/room:lobby/events",
            json={"type": "t", "data": 1},
            headers={"Origin": "https://chat.example.com"},
        )
        assert proxied.status_code == 201, proxied.text
        foreign = await client.post(
            "/api/channels/room:lobby/events",
            json={"type": "t", "data": 1},
            headers={"Origin": "https://evil.example.com"},
        )
        assert foreign.status_code == 403


def test_the_application_secret_must_differ_from_the_servers() -> None:
    """Whoever holds the application's secret may speak for its people, not for fourcast: with
    one secret for both, they could sign a ticket for an unscoped service."""
    secret = "s" * 48
    with pytest.raises(ValueError, match="must differ"):
        Settings(secret_key=secret, app_token_secret=secret)
    assert Settings(secret_key=secret, app_token_secret="a" * 48).app_token_secret


@pytest.mark.parametrize(
    "url",
    ["sqlite+aiosqlite:///file:{dir}/x.db?uri=true", "sqlite+aiosqlite:///{dir}/x.db?uri=true"],
)
async def test_start_up_refuses_a_sqlite_database_in_uri_form(
    start_server: ServerFactory, url: str, tmp_path: Path
) -> None:
    """In URI form the file's path is not known, so neither is its one-writer lock: a second
    process on the same file would have started and handed out the same cursors."""
    with pytest.raises(RuntimeError) as failed:
        start_server(database_url=url.format(dir=tmp_path))
    assert "SQLite URI forms" in str(failed.value)
    assert "Traceback" not in str(failed.value)
    assert Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db").database_url


def test_settings_refuse_an_event_larger_than_a_readers_outbox() -> None:
    """Such an event overflowed every reader's empty outbox: WebSocket and SSE readers were cut
    off, resumed before it, and were cut off again, for ever (long polls did get it)."""
    mib = 1024 * 1024
    with pytest.raises(ValueError, match="queue_max_bytes must hold the largest event"):
        Settings(max_event_bytes=2 * mib, max_body_bytes=4 * mib)
    assert Settings(max_event_bytes=2 * mib, max_body_bytes=4 * mib, queue_max_bytes=3 * mib)
