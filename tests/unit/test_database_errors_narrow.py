"""Only the database layer's errors are told as `503 database unavailable`.

An OSError or TimeoutError from anything else (a file, a socket to another service, an SSE send
timing out) is an internal error: a 500 with its own log line, so an operator is not sent to look
at a database that is fine. The errors here are real ones: a missing file, and a connection
refused to a port nobody listens on, made through SQLAlchemy and asyncpg as a route makes it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.store.db import create_engine, database_unavailable
from app.web import errors
from tests.fixtures.ports import free_port


def _app(tmp_path: Path) -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/file")
    async def read_file() -> str:
        return (tmp_path / "missing").read_text()

    @app.get("/database")
    async def database() -> str:
        engine = create_engine(f"postgresql+asyncpg://u:p@127.0.0.1:{free_port()}/x")
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()
        return "reached"

    return app


async def test_an_oserror_from_a_file_is_a_500_told_as_itself(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    transport = httpx.ASGITransport(app=_app(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with caplog.at_level(logging.INFO, logger=errors.__name__):
            response = await client.get("/file")
    assert response.status_code == 500, response.text
    assert response.json()["error"]["code"] == "internal_error"
    assert "Retry-After" not in response.headers
    told = [r for r in caplog.records if r.name == errors.__name__]
    assert [r.getMessage().split(" [")[0] for r in told] == [
        "unhandled FileNotFoundError on GET /file"
    ]
    assert "database unavailable" not in caplog.text


async def test_a_refused_database_connection_is_still_a_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    transport = httpx.ASGITransport(app=_app(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with caplog.at_level(logging.INFO, logger=errors.__name__):
            response = await client.get("/database")
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "2"
    assert "503 database unavailable on GET /database: ConnectionRefusedError" in caplog.text


def test_a_timeout_raised_outside_the_database_layer_is_not_the_database() -> None:
    try:
        raise TimeoutError("an SSE send timed out")
    except TimeoutError as exc:
        assert not database_unavailable(exc)
