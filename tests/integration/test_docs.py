"""The documentation a newcomer follows, held to the running system: README.md's HTTP examples
work as written, every setting is in docs/operations.md under its variable with its default,
every metric /metrics shows is documented there (and every one documented is shown), and every
error code the server can answer is in docs/protocol.md or docs/operations.md."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.fixtures.server import ServerFactory, ServerProcess

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
PROTOCOL = (ROOT / "docs" / "protocol.md").read_text()
DOC_URL = "http://127.0.0.1:8000"

ONLY_ON_REDIS = {"fourcast_archive_lag_events"}
"""Metrics a server registers only with FOURCAST_REDIS_URL (the suite's default has none)."""


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


def _documented_defaults() -> dict[str, str]:
    """`FOURCAST_X` -> the default its row gives, from the tables of docs/operations.md whose
    first or second column names variables."""
    found: dict[str, str] = {}
    for line in OPERATIONS.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        for at in (0, 1):
            if len(cells) > at + 1 and re.match(r"^`(FOURCAST_|\.\.\._)", cells[at]):
                names = _variables(cells[at].split(" (")[0])
                values = [v.strip() for v in _unbracketed(cells[at + 1]).split(", ")]
                for i, name in enumerate(names):
                    found.setdefault(name, values[i] if len(values) == len(names) else values[0])
    return found


def _variables(cell: str) -> list[str]:
    """The variables a cell names; `..._PER_IP` continues the name before it."""
    names: list[str] = []
    for name in re.findall(r"`((?:FOURCAST|\.\.\.)_[A-Z0-9_]+)`", cell):
        if name.startswith("..."):
            suffix = name[4:]
            name = "_".join([*names[-1].split("_")[: -suffix.count("_") - 1], suffix])
        names.append(name)
    return names


def _unbracketed(text: str) -> str:
    """`text` without its remarks in brackets, nested ones included."""
    while (shorter := re.sub(r"\([^()]*\)", "", text)) != text:
        text = shorter
    return text


UNITS = {"KiB": 1024, "MiB": 1024 * 1024, "days": 86400, "h": 3600, "s": 1}


def _parse(text: str) -> Any:
    """A documented default as a value: `true`, 1,000, 64 KiB, 7 days, 10/s, burst 20 ..."""
    text = text.removeprefix("burst ").replace(" each", "").replace(" of data", "").strip("`")
    if text in ("true", "false"):
        return text == "true"
    match = re.fullmatch(r"([\d,.]+)\s*(KiB|MiB|days|h|s|/s)?", text)
    if match is None:
        return text
    number = float(match[1].replace(",", ""))
    return number * UNITS.get(match[2] or "", 1)


def test_every_setting_is_documented_with_its_default() -> None:
    documented = _documented_defaults()
    for name, field in Settings.model_fields.items():
        variable = f"FOURCAST_{name.upper()}"
        assert variable in documented, f"{variable} is not in docs/operations.md's tables"
        default = field.get_default(call_default_factory=True)
        text = documented[variable]
        if default in (None, "", (), {}):
            continue  # unset: the doc says what takes its place
        parsed = str(_parse(text)) if isinstance(default, Path) else _parse(text)
        default = str(default) if isinstance(default, Path) else default
        same = parsed == default and isinstance(parsed, bool) == isinstance(default, bool)
        assert same, f"{variable}: documented {text!r}, default {default!r}"
    unknown = set(documented) - {f"FOURCAST_{n.upper()}" for n in Settings.model_fields}
    assert not unknown, f"documented settings that do not exist: {unknown}"


def _families(text: str) -> dict[str, set[tuple[str, str]]]:
    """Metric name -> its (label, value) pairs, from a /metrics page (no `_created` ones)."""
    names = re.findall(r"^# TYPE (\S+) ", text, re.M)
    families: dict[str, set[tuple[str, str]]] = {
        name: set() for name in names if not name.endswith("_created")
    }
    for name, labels in re.findall(r"^(fourcast_\w+)\{([^}]*)\}", text, re.M):
        family = re.sub(r"_(bucket|count|sum)$", "", name)
        if family in families:
            pairs = set(re.findall(r'(\w+)="([^"]*)"', labels))
            families[family] |= {(label, value) for label, value in pairs if label != "le"}
    return families


@pytest.fixture
def metrics_page(server: ServerProcess) -> str:
    return httpx.get(f"{server.url}/metrics").text


def test_every_metric_shown_is_documented_with_its_labels(metrics_page: str) -> None:
    for name, labels in _families(metrics_page).items():
        assert f"`{name}" in OPERATIONS, f"{name} is not in docs/operations.md"
        for label, value in labels:
            assert f"`{name}{{{label}}}`" in OPERATIONS, f"{name}{{{label}}} is not documented"
            assert f"`{value}`" in OPERATIONS, f"{name}{{{label}={value!r}}} is not documented"


def test_every_metric_documented_is_shown(metrics_page: str) -> None:
    shown = set(_families(metrics_page)) | ONLY_ON_REDIS
    documented = set(re.findall(r"`(fourcast_[a-z_]+)[`{]", OPERATIONS))
    assert documented - shown == set()


ERROR_CODE_IN_SOURCE = re.compile(
    r'\bcode\s*=\s*"([a-z_]+)"'  # a FourcastError's class code, or one given to it
    r'|"code":\s*"([a-z_]+)"'  # a prebuilt body (app/server/refusals.py)
    r'|EventError\(\s*"([a-z_]+)"'
    r'|(?:error_response|error_answer|\.error)\([^"()]*?"([a-z_]+)"'  # HTTP, poll lane, /ws
    r'|^\s*\d{3}: "([a-z_]+)"',  # the status -> code table of app/web/errors.py
    re.M,
)


def test_every_error_code_the_server_answers_is_documented() -> None:
    codes = {
        code
        for path in (ROOT / "app").rglob("*.py")
        if "client" not in path.relative_to(ROOT / "app").parts  # fourcast.client reads codes
        for match in ERROR_CODE_IN_SOURCE.findall(path.read_text())
        for code in match
        if code
    }
    assert len(codes) > 30  # the patterns still find the codes
    codes.discard("error")  # FourcastError's own, never raised as such
    documented = set(re.findall(r"`(?:\d{3} )?([a-z_]+)`", PROTOCOL + OPERATIONS))
    assert codes - documented == set()


def test_every_file_the_docs_name_exists() -> None:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    named = {
        (doc.name, path)
        for doc in docs
        for path in re.findall(
            r"\b((?:app|tests|bench|scripts|static|templates|alembic|docs)/[\w./-]+\.\w+)\b",
            doc.read_text(),
        )
    }
    assert len(named) > 20  # the pattern still finds them
    assert [f"{doc}: {path}" for doc, path in sorted(named) if not (ROOT / path).exists()] == []
