"""An unexpected exception in a WebSocket handler closes with 1011, never a silent drop."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.main import create_app
from app.settings import Settings
from app.web.api import socket


def test_a_handler_crash_closes_with_1011(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: socket.Connection, msg: dict[str, object], ref: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setitem(socket.OPS, "ping", broken)
    app = create_app(Settings(data_dir=tmp_path, secret_key="s" * 48))
    with (
        TestClient(app) as client,
        client.websocket_connect("/ws", subprotocols=["fourcast.v1"]) as ws,
    ):
        assert ws.receive_json()["op"] == "welcome"
        ws.send_json({"op": "ping"})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1011


def test_other_connections_are_unaffected_by_one_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    original = socket.OPS["ping"]

    async def crash_once(self: socket.Connection, msg: dict[str, object], ref: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug")
        await original(self, msg, ref)

    monkeypatch.setitem(socket.OPS, "ping", crash_once)
    app = create_app(Settings(data_dir=tmp_path, secret_key="s" * 48))
    with TestClient(app) as client, client.websocket_connect("/ws") as healthy:
        healthy.receive_json()
        with client.websocket_connect("/ws") as doomed:
            doomed.receive_json()
            doomed.send_json({"op": "ping"})
            with pytest.raises(WebSocketDisconnect):
                doomed.receive_json()
        healthy.send_json({"op": "ping", "ts": 1})
        assert healthy.receive_json()["op"] == "pong"
