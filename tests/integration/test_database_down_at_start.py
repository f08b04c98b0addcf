"""A database that is down at start-up ends the server with one line naming the database (its
password hidden) and the cause, and a non-zero exit: on both launch paths, without Redis (the
writer lock is the first use) and with it (the migrations are)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.ports import free_port
from tests.fixtures.server import ServerFactory

PASSWORD = "hunter2-secret"


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
@pytest.mark.parametrize("bus", ["memory", "redis"])
def test_a_database_down_at_start_up_is_one_line_and_a_failed_exit(
    start_server: ServerFactory,
    tmp_path: Path,
    launch: str,
    bus: str,
    request: pytest.FixtureRequest,
) -> None:
    port = free_port()  # nobody listens there
    url = f"postgresql+asyncpg://fourcast:{PASSWORD}@127.0.0.1:{port}/fourcast"
    settings: dict[str, object] = {"database_url": url}
    if bus == "redis":
        settings["redis_url"] = request.getfixturevalue("redis_url")
    with pytest.raises(RuntimeError, match="exited at start-up") as info:
        start_server(launch=launch, **settings)
    server = start_server.__self__.started[-1]  # type: ignore[attr-defined]
    assert server.process is not None and server.process.returncode != 0
    told = str(info.value)
    line = (
        f"cannot start: the database postgresql+asyncpg://fourcast:***@127.0.0.1:{port}/fourcast"
        " cannot be used: ConnectionRefusedError"
    )
    assert line in told, told[-3000:]
    assert PASSWORD not in told
    assert "Traceback" not in told, told[-3000:]
    assert len(server.log().splitlines()) < 10, told[-3000:]


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
def test_another_oserror_at_start_up_is_not_told_as_the_database(
    start_server: ServerFactory, tmp_path: Path, launch: str
) -> None:
    """The generated secret's file cannot be read (here: it is a directory): the server names that
    error, not the database, which is fine."""
    data = tmp_path / "data"
    (data / "secret_key").mkdir(parents=True)
    with pytest.raises(RuntimeError, match="exited at start-up") as info:
        start_server(launch=launch, data_dir=data, secret_key="")
    server = start_server.__self__.started[-1]  # type: ignore[attr-defined]
    assert server.process is not None and server.process.returncode != 0
    told = str(info.value)
    assert "IsADirectoryError" in told, told[-3000:]
    assert "cannot start: the database" not in told, told[-3000:]
