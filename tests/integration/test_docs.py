"""The documentation a newcomer follows, held to the running system: README.md's HTTP examples
work as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import httpx

from tests.fixtures.server import ServerFactory

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOC_URL = "http://127.0.0.1:8000"


def _section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def _shell_lines(block: str) -> list[str]:
    """A ```sh block's commands: continuations joined, comments and blank lines dropped."""
    body = block.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = re.sub(r"\\\n\s*", " ", body).splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


async def _curl(client: httpx.AsyncClient, args: list[str], base: str) -> tuple[int, bytes]:
    """One curl command line as curl runs it: `-d` is a POST with curl's own form content type
    unless a header sets another; `-N` reads the stream's first bytes and hangs up."""
    headers: dict[str, str] = {}
    method, body, url, stream = "", None, "", False
    words = iter(args[1:])
    for word in words:
        if word == "-X":
            method = next(words)
        elif word == "-H":
            name, _, value = next(words).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            body = next(words).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif word == "-N":
            stream = True
        else:
            assert not word.startswith("-"), f"curl option the test does not know: {word}"
            url = word.replace(DOC_URL, base)
    method = method or ("POST" if body is not None else "GET")
    async with client.stream(method, url, headers=headers, content=body) as response:
        if stream:
            return response.status_code, await anext(response.aiter_bytes())
        return response.status_code, await response.aread()


async def test_the_readme_http_examples_work_as_written(start_server: ServerFactory) -> None:
    lines = _shell_lines(_section(README, "## Using it from a service over HTTP"))
    exported = dict(
        word.split("=", 1)
        for line in lines
        if line.startswith("export ")
        for word in line.split()[1:]
    )
    server = start_server(api_keys=exported.pop("FOURCAST_API_KEYS"))
    assert not exported
    commands = [shlex.split(line) for line in lines if line.startswith("curl ")]
    assert len(commands) == 3
    answers = []
    async with httpx.AsyncClient(timeout=10) as client:
        for command in commands:
            answers.append(await _curl(client, command, server.url))
    assert [status for status, _ in answers] == [201, 200, 200], answers
    assert b'"EURUSD":1.0842' in answers[1][1]
    assert answers[2][1].startswith(b": connected")
