"""The `fourcast` command given what it cannot use: a reader of its output that leaves, option
values that cannot work. Each ends with a line on stderr and an exit status, never a traceback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.fixtures.server import ServerProcess
from tests.integration.test_cli import FOURCAST, cli_env, publish

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
