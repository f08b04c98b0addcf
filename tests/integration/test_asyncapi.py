"""`/asyncapi.json`: valid for the AsyncAPI project's own parser (npm `@asyncapi/parser`, installed
by `make install-test` under tests/asyncapi/), and complete: every op the server dispatches, every
op it sends, every close code it uses. The lists come from the server's code, not from a copy."""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.web import wire
from app.web.api import socket
from app.web.ws import codes, connection, ops, writer
from tests.fixtures.server import ROOT, ServerProcess

CHECKER = ROOT / "tests" / "asyncapi"
OP_LITERAL = re.compile(r"""["']?\{?"op":\s?"(\w+)""")


@pytest.fixture(scope="module")
def document(shared_server: ServerProcess) -> dict[str, Any]:
    response = httpx.get(f"{shared_server.url}/asyncapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def validate(document: dict[str, Any], folder: Path) -> tuple[int, dict[str, Any]]:
    node = shutil.which("node")
    assert node, "node is missing: run `make install-test`"
    assert (CHECKER / "node_modules" / "@asyncapi" / "parser").is_dir(), "run `make install-test`"
    path = folder / "asyncapi.json"
    path.write_text(json.dumps(document))
    done = subprocess.run(
        [node, "validate.mjs", str(path)], cwd=CHECKER, capture_output=True, text=True, timeout=60
    )
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def payload_ops(document: dict[str, Any], action: str) -> set[str]:
    """The `op` constants of the messages of every operation with this action on /ws."""
    messages = document["channels"]["websocket"]["messages"]
    found = set()
    for operation in document["operations"].values():
        if operation["action"] != action or operation["channel"]["$ref"] != "#/channels/websocket":
            continue
        for ref in operation["messages"]:
            name = ref["$ref"].rsplit("/", 1)[1]
            found.add(messages[name]["payload"]["properties"]["op"]["const"])
    return found


def test_the_document_passes_the_asyncapi_parser(document: dict[str, Any], tmp_path: Path) -> None:
    status, report = validate(document, tmp_path)
    assert status == 0 and report["errors"] == [], report
    assert document["asyncapi"].startswith("3.")
    assert "streamEvents" in report["operations"]  # the SSE stream


def test_the_parser_rejects_a_broken_document(document: dict[str, Any], tmp_path: Path) -> None:
    broken = json.loads(json.dumps(document))
    broken["operations"]["subscribe"]["action"] = "shout"
    status, report = validate(broken, tmp_path)
    assert status == 1 and report["errors"], report


def test_every_op_the_server_handles_is_a_send_operation(document: dict[str, Any]) -> None:
    assert set(socket.OPS) <= payload_ops(document, "send")


def test_every_op_the_server_sends_is_a_receive_operation(document: dict[str, Any]) -> None:
    sources = (socket, connection, ops, writer)  # the handshake and every part of a connection
    sent = {op for module in sources for op in OP_LITERAL.findall(inspect.getsource(module))}
    sent |= set(OP_LITERAL.findall(inspect.getsource(wire)))  # the pre-built event frames
    sent -= set(socket.OPS)  # `msg.get("op")` reads, not sends
    assert {"welcome", "ack", "error", "pong", "event", "reset"} <= sent  # the scan finds them
    assert sent <= payload_ops(document, "receive")


def test_every_close_code_the_server_uses_is_documented(document: dict[str, Any]) -> None:
    used = {str(v) for k, v in vars(codes).items() if k.startswith("CLOSE_")}
    assert used <= set(document["channels"]["websocket"]["x-close-codes"])
    for code in used:
        assert f"`{code}`" in document["channels"]["websocket"]["description"]


def test_a_policy_close_says_what_docs_protocol_md_says(document: dict[str, Any]) -> None:
    """A 1008 answering the `auth` op wants a new token; any other (abuse) is reconnected after a
    pause, as docs/protocol.md and the browser client have it: not "do not retry"."""
    said = document["channels"]["websocket"]["x-close-codes"]["1008"]
    assert "auth op" in said and "new token" in said
    assert "at least 5 s" in said and "do not retry" not in said


def test_linked_from_docs_and_the_index_page(shared_server: ServerProcess) -> None:
    openapi = httpx.get(f"{shared_server.url}/openapi.json").json()
    assert "(/asyncapi.json)" in openapi["info"]["description"]
    index = httpx.get(f"{shared_server.url}/").text
    assert 'href="/asyncapi.json"' in index
