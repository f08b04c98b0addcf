"""One real server per fuzzing module, and an honest WebSocket reader beside the fuzzer that
must stay healthy throughout: every honest event delivered once, in order, never closed."""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.fixtures.server import ServerProcess, Servers

HONEST = "public:honest"


def _import_schemathesis_now() -> None:
    """Every schemathesis module, imported while this process is collecting tests.

    schemathesis is a pytest plugin, so pytest parses each of its modules (to rewrite its
    asserts) when it is first imported, and most are imported lazily, mid-test. On CPython
    3.11.7, the Python this machine has, `ast.parse` can fail once a fuzzing run has been under
    way ("SystemError: AST constructor recursion depth mismatch", python/cpython#106905). Parsed
    now, at collection, nothing is left to parse later. Still needed with the plugin disabled
    (`-p no:schemathesis` in pyproject.toml): pytest marks the modules of every distribution that
    declares a plugin for rewriting, blocked or not, and without this call a fuzzing run imports
    (and rewrites) about a hundred schemathesis modules mid-test."""
    for module in pkgutil.walk_packages(schemathesis.__path__, "schemathesis."):
        with contextlib.suppress(ImportError):  # optional integrations (allure, ...)
            importlib.import_module(module.name)


_import_schemathesis_now()


class HonestReader:
    """A subscriber on its own thread (the sync client answers the server's pings itself)."""

    def __init__(self, server: ServerProcess, ws: ClientConnection) -> None:
        self.server = server
        self.ws = ws
        assert orjson.loads(self.ws.recv(10))["op"] == "welcome"
        self.ws.send(orjson.dumps({"op": "subscribe", "channel": HONEST, "ref": "s"}).decode())
        ack = orjson.loads(self.ws.recv(10))
        assert ack["op"] == "ack", ack
        self.events: list[Any] = []
        self.closed: ConnectionClosed | None = None
        self.sent = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for message in self.ws:
                decoded = orjson.loads(message)
                if decoded.get("op") == "event":
                    self.events.append(decoded["data"])
        except ConnectionClosed as exc:
            self.closed = exc

    def check(self) -> None:
        """Publish one honest event; it must arrive, after all the earlier ones, in order."""
        self.sent += 1
        response = httpx.post(
            f"{self.server.url}/api/channels/{HONEST}/events",
            json={"type": "honest", "data": self.sent},
            headers=self.server.service_headers,
            timeout=10,
        )
        assert response.status_code == 201, response.text
        deadline = time.monotonic() + 10
        while len(self.events) < self.sent and self.closed is None:
            assert time.monotonic() < deadline, ("honest event not delivered", self.events)
            time.sleep(0.005)
        assert self.closed is None, f"honest reader closed: {self.closed}"
        assert self.events == list(range(1, self.sent + 1)), self.events

    def join(self) -> None:
        self._thread.join(5)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    servers = Servers(tmp_path_factory.mktemp("fuzz"))
    server = servers.start()
    yield server
    servers.stop_all()
    assert_no_server_errors(server.log_path)


@pytest.fixture(scope="module")
def honest(fuzz_server: ServerProcess) -> Iterator[HonestReader]:
    with connect(fuzz_server.ws_url, subprotocols=["fourcast.v1"]) as ws:  # type: ignore[list-item]
        reader = HonestReader(fuzz_server, ws)
        reader.check()
        yield reader
        reader.check()
    reader.join()


@pytest.fixture(scope="module")
def guest_token(fuzz_server: ServerProcess) -> str:
    response = httpx.post(f"{fuzz_server.url}/api/session", json={"name": "fuzzer"}, timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def assert_no_server_errors(log: Path) -> None:
    """No handler failed on the server's side (what a 500 or a 1011 would have logged)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    assert "Traceback" not in text, text[-5000:]
