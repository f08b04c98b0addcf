"""The `fourcast` command given what it cannot use: a reader of its output that leaves, option
values that cannot work. Each ends with a line on stderr and an exit status, never a traceback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.server import API_KEY, ServerProcess
from tests.integration.test_cli import FOURCAST, cli_env, fourcast, publish

EXIT_WAIT = 30.0  # bounds a failure only


def test_tail_ends_quietly_when_the_reader_of_its_output_leaves(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    """`fourcast tail | head -1`: the next event tail writes meets a closed pipe."""
    first = publish(shared_server, 1)
    with (tmp_path / "err").open("w") as err:  # the child keeps its own descriptor
        tail = subprocess.Popen(
            [*FOURCAST, "tail", "public:x", "--after", "0", "--transport", "sse", "--json"],
            env=cli_env({"PATH": "/usr/bin:/bin", "FOURCAST_URL": shared_server.url}),
            stdout=subprocess.PIPE,
            stderr=err,
        )
    try:
        assert tail.stdout is not None
        seen = [json.loads(tail.stdout.readline())["id"]]
        while seen[-1] != first["id"]:  # the shared server's channel may hold earlier events
            seen.append(json.loads(tail.stdout.readline())["id"])
        tail.stdout.close()  # the reader leaves, as `head -1` does
        publish(shared_server, 2)  # tail writes it to the closed pipe
        status = tail.wait(EXIT_WAIT)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait(10)
    stderr = (tmp_path / "err").read_text()
    assert status == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # A UnicodeEncodeError traceback from httpx, at the first request.
        (("publish", "public:y", "note", "{}", "--api-key", "clé-0123456789abcdef"), "API key"),
        (("tail", "public:y", "--after", "0", "--transport", "sse", "--token", "jetón"), "token"),
        (("publish", "public:y", "note", "{}", "--idempotency-key", "commande-é"), "printable"),
        # Refused by httpx as a network error: retried as if the server were away.
        (("publish", "public:y", "note", "{}", "--retry-for", "0", "--api-key", "a\nb"), "key"),
        (("tail", "public:y", "--after", "0", "--transport", "ws", "--token", "a\nb"), "token"),
    ],
)
def test_a_credential_or_key_no_header_can_carry_is_a_usage_error(
    shared_server: ServerProcess, args: tuple[str, ...], message: str
) -> None:
    done = fourcast(*args, env={"PATH": "/usr/bin:/bin", "FOURCAST_URL": shared_server.url})
    assert done.returncode == 2, done
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "clé" not in done.stderr and "jetón" not in done.stderr  # secrets are not echoed


@pytest.mark.parametrize(
    "args",
    [
        # The first poll, then asyncio.sleep(nan), which never returns: a tail that prints nothing.
        ("tail", "public:y", "--after", "0", "--transport", "shortpoll", "--poll-interval", "nan"),
        ("tail", "public:y", "--after", "0", "--transport", "shortpoll", "--poll-interval", "inf"),
        # Backoff delays of nan: the first drop would never be retried.
        ("tail", "public:y", "--after", "0", "--max-backoff", "nan"),
        ("tail", "public:y", "--after", "0", "--max-backoff", "inf"),
        # A deadline of nan never passes: retried for ever while the server is away.
        ("publish", "public:y", "note", "{}", "--retry-for", "nan"),
        ("publish", "public:y", "note", "{}", "--retry-for", "-1"),
    ],
)
def test_durations_that_cannot_work_are_usage_errors(
    shared_server: ServerProcess, args: tuple[str, ...]
) -> None:
    env = {"PATH": "/usr/bin:/bin", "FOURCAST_URL": shared_server.url, "FOURCAST_API_KEY": API_KEY}
    done = fourcast(*args, env=env)
    assert done.returncode == 2, done
    assert args[-2] in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.stdout == ""  # nothing published
