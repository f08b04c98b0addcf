"""The `fourcast` command in a checkout: tail on each transport across a SIGKILL and restart,
publish from an argument and from stdin, keys, migrate, and serve's usage errors."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from app.store.migrate import head_revision
from tests.fixtures.server import API_KEY, ROOT, ServerFactory, ServerProcess, free_port

FOURCAST = [sys.executable, "-c", "from app.cli import main; main()"]
"""`fourcast`, run from this checkout's code: the installed script runs the checkout the virtualenv
was installed from, which a git worktree is not (tests/packaging covers the script itself)."""
TRANSPORTS = ("ws", "sse", "longpoll", "shortpoll")
DEADLINE = 30.0  # bounds a failure only
NOT_PEM = str(ROOT / "pyproject.toml")


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's), with this checkout importable from any folder."""
    return {**(os.environ if env is None else env), "PYTHONPATH": str(ROOT)}


def fourcast(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FOURCAST, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(env),
        **kwargs,
    )


def publish(server: ServerProcess, n: int) -> dict[str, object]:
    done = fourcast(
        "publish",
        "public:x",
        "tick",
        json.dumps({"n": n}),
        "--url",
        server.url,
        "--api-key",
        API_KEY,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class Tail:
    """A `fourcast tail --json` process writing to files the test reads."""

    def __init__(self, server: ServerProcess, transport: str, folder: Path) -> None:
        self.transport = transport
        self.out = folder / f"tail-{transport}.out"
        self.err = folder / f"tail-{transport}.err"
        # The child keeps its own copies of the files' descriptors.
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = self._start(server, transport, out, err)

    @staticmethod
    def _start(
        server: ServerProcess, transport: str, out: IO[str], err: IO[str]
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                *FOURCAST,
                "tail",
                "public:x",
                "--transport",
                transport,
                "--json",
                "--url",
                server.url,
                "--poll-interval",
                "0.1",
                "--max-backoff",
                "1",
            ],
            stdout=out,
            stderr=err,
            env=cli_env(),
        )

    def numbers(self) -> list[int]:
        lines = self.out.read_text().splitlines()
        return [json.loads(line)["data"]["n"] for line in lines if line.endswith("}")]

    def stderr(self) -> str:
        return self.err.read_text()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def wait_until(check: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def tails(
    start_server: ServerFactory, tmp_path: Path
) -> Iterator[tuple[ServerProcess, list[Tail]]]:
    server = start_server()
    running = [Tail(server, transport, tmp_path) for transport in TRANSPORTS]
    yield server, running
    for tail in running:
        tail.stop()


def test_tail_on_every_transport_goes_on_after_a_kill_and_restart(
    tails: tuple[ServerProcess, list[Tail]],
) -> None:
    server, running = tails
    names = {"ws": "websocket"}
    for tail in running:
        shown = f"public:x over {names.get(tail.transport, tail.transport)}"
        wait_until(lambda t=tail, s=shown: s in t.stderr(), f"{tail.transport} to be live")
    publish(server, 1)
    for tail in running:
        wait_until(lambda t=tail: t.numbers() == [1], f"{tail.transport} to print event 1")

    server.kill()  # SIGKILL
    for tail in running:
        wait_until(lambda t=tail: "retrying in" in t.stderr(), f"{tail.transport} to retry")
    server.start()  # same port, same data folder
    publish(server, 2)
    publish(server, 3)
    for tail in running:
        wait_until(lambda t=tail: len(t.numbers()) >= 3, f"{tail.transport} to resume")
    for tail in running:
        assert tail.numbers() == [1, 2, 3], (tail.transport, tail.stderr())
        assert tail.process.poll() is None  # the same process went on


def test_publish_from_stdin_with_an_idempotency_key(shared_server: ServerProcess) -> None:
    server = shared_server
    options = ("--url", server.url, "--api-key", API_KEY, "--idempotency-key", "k-1")
    first = fourcast("publish", "public:y", "note", *options, stdin='{"text": "hi"}')
    again = fourcast("publish", "public:y", "note", "-", *options, stdin='{"text": "hi"}')
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert json.loads(first.stdout) == json.loads(again.stdout)
    assert json.loads(first.stdout)["data"] == {"text": "hi"}


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (("publish", "public:y", "note", "{oops"), 2, "DATA is not valid JSON"),
        (("publish", "public:y", "note", "{}", "--api-key", "wrong-key-0123456789"), 1, "401"),
        (("tail", "public:y", "--transport", "carrier-pigeon"), 2, "invalid choice"),
        (("tail", "room:private", "--after", "0"), 1, "unauthorized"),
        (("serve", "--workers", "2"), 2, "FOURCAST_REDIS_URL"),
        (("serve", "--tls-cert", "/nonexistent.pem"), 2, "--tls-key"),
        (("keys", "new", "two words"), 2, "invalid name"),
        (("migrate", "not-a-url"), 2, "not a database URL"),
        (("serve", "--log-level", "verbose"), 2, "invalid choice"),
        (("serve", "--tls-cert", NOT_PEM, "--tls-key", NOT_PEM), 2, "not a PEM certificate"),
        (("tail", "public:y", "--url", "http://[::1"), 2, "invalid server URL"),
        (("tail", "public:y", "--url", "localhost:8000"), 2, "invalid server URL"),
        (("publish", "public:y", "note", "{}", "--url", "localhost:8000"), 2, "invalid server URL"),
        (("tail", "public:y", "--after", "é", "--transport", "sse"), 2, "--after"),
        (("frobnicate",), 2, "invalid choice"),
    ],
)
def test_errors_are_one_line_with_exit_status_2_for_usage_and_1_for_failures(
    shared_server: ServerProcess, args: tuple[str, ...], status: int, message: str
) -> None:
    env_url = {"FOURCAST_URL": shared_server.url, "PATH": "/usr/bin:/bin"}
    done = fourcast(*args, env={**env_url, "FOURCAST_REDIS_URL": ""})
    assert done.returncode == status, done
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_port_variable_is_a_usage_error_of_serve_only() -> None:
    """$PORT is only `serve`'s default: a value that is no number must not break other commands,
    and for `serve` it is bad usage (2) in one line, not a traceback."""
    env = {"PORT": "tcp://10.0.0.1:8000", "PATH": "/usr/bin:/bin"}
    assert fourcast("keys", "new", "billing", env=env).returncode == 0
    done = fourcast("serve", env=env)
    assert done.returncode == 2, done
    assert "--port" in done.stderr and "Traceback" not in done.stderr


def test_keys_new_prints_a_strong_key_and_its_setting() -> None:
    done = fourcast("keys", "new", "billing")
    assert done.returncode == 0
    key, line = done.stdout.splitlines()
    assert len(key) >= 40
    assert line == f"FOURCAST_API_KEYS=billing:{key}"
    assert fourcast("keys", "new", "billing").stdout.split()[0] != key


def test_migrate_brings_an_empty_database_to_head(tmp_path: Path) -> None:
    database = tmp_path / "empty.db"
    done = fourcast("migrate", f"sqlite+aiosqlite:///{database}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "bringing" in done.stderr  # progress
    with sqlite3.connect(database) as db:
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == head_revision()


def test_serve_with_tls_and_json_logs(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = tmp_path / "serve.log"
    env = {"PATH": "/usr/bin:/bin", "FOURCAST_DATA_DIR": str(tmp_path / "data")}
    args = ["--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*FOURCAST, "serve", *args, "--log-format", "json"],
            cwd=tmp_path,
            env=cli_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=cert)) as client:
            url = f"https://127.0.0.1:{port}"

            def answers() -> bool:
                assert process.poll() is None, log.read_text()
                try:
                    return client.get(f"{url}/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(answers, "the TLS server")
            assert client.get(f"{url}/").status_code == 200
            # Served over TLS, the session cookie is Secure: else a browser would send it in
            # clear to any plain http URL of the same host.
            signed_in = client.post(f"{url}/api/session", json={"name": "Tess"})
            assert signed_in.status_code == 201, signed_in.text
            assert "; secure" in signed_in.headers["set-cookie"].lower()
    finally:
        process.terminate()
        process.wait(15)
    # docs/operations.md: one JSON object per line, the line naming the demo pages too.
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(r["logger"] == "uvicorn.error" for r in records), log.read_text()
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any(r["path"] == "/" and r["status"] == 200 for r in access), access
    assert any(f"https://127.0.0.1:{port}/" in r["message"] for r in records), records
    assert not [r for r in records if r["logger"].startswith("alembic")], records


def test_tail_shows_a_reset_on_stderr(shared_server: ServerProcess, tmp_path: Path) -> None:
    # A cursor the channel never issued is unknown: the server resets instead of a silent gap.
    publish(shared_server, 1)
    with (tmp_path / "out").open("w") as out, (tmp_path / "err").open("w") as err:
        tail = subprocess.Popen(
            [*FOURCAST, "tail", "public:x", "--after", "999999", "--transport", "sse", "--json"],
            env=cli_env({"PATH": "/usr/bin:/bin", "FOURCAST_URL": shared_server.url}),
            stdout=out,
            stderr=err,
        )
    try:
        wait_until(lambda: "reset on public:x" in (tmp_path / "err").read_text(), "the reset")
        wait_until(lambda: '"n": 1' in (tmp_path / "out").read_text(), "the retained event")
    finally:
        tail.terminate()
        tail.wait(10)


@pytest.mark.parametrize(
    ("args", "env", "status", "message"),
    [
        # The flag wins over the other credential's variable: the key publishes...
        (("publish", "public:y", "note", "{}", "--api-key", API_KEY), {"TOKEN": "bogus"}, 0, ""),
        # ...and the bogus token is what the server refuses, not a clash of the two.
        (("tail", "room:z", "--after", "0", "--token", "bogus"), {"API_KEY": API_KEY}, 1, "401"),
        (("publish", "public:y", "note", "{}"), {"API_KEY": API_KEY, "TOKEN": "x"}, 2, "both set"),
    ],
)
def test_credential_variables_are_defaults_that_a_flag_overrides(
    shared_server: ServerProcess,
    args: tuple[str, ...],
    env: dict[str, str],
    status: int,
    message: str,
) -> None:
    variables = {f"FOURCAST_{name}": value for name, value in env.items()}
    base = {"PATH": "/usr/bin:/bin", "FOURCAST_URL": shared_server.url}
    done = fourcast(*args, env={**base, **variables})
    assert done.returncode == status, done
    assert message in done.stderr and "Traceback" not in done.stderr


def test_serve_on_a_port_in_use_fails_with_status_1(tmp_path: Path) -> None:
    """The CLI's documented failure status, not uvicorn's start-up code (3)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        env = {"PATH": "/usr/bin:/bin", "FOURCAST_DATA_DIR": str(tmp_path / "data")}
        done = fourcast("serve", "--port", port, "--no-access-log", env=env, cwd=tmp_path)
    assert done.returncode == 1, done
    assert "fourcast serve: could not start" in done.stderr.splitlines()[-1], done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("command", "name", "other"),
    [
        ([sys.executable, "-m", "app"], "python -m app", "fourcast serve"),
        ([*FOURCAST, "serve"], "fourcast serve", "python -m app"),
    ],
)
def test_serve_names_itself_as_it_was_run(
    tmp_path: Path, command: list[str], name: str, other: str
) -> None:
    """Its help and its errors name the spelling typed (the installed `python -m fourcast` too:
    tests/packaging), not another one."""
    env = cli_env({"PATH": "/usr/bin:/bin"})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path
        )

    done = run("--workers", "0")
    assert done.returncode == 2, done
    assert done.stderr == f"{name}: --workers must be at least 1, got 0\n", done.stderr
    usage = run("--help")
    assert usage.returncode == 0, usage
    described = " ".join(usage.stdout.split())
    assert f"{name} (the same as {other}): serve fourcast" in described, described
    assert "alias" not in described
