"""An SSE stream whose headers cannot be sent gives back the connection slot it was admitted with.

The slot is taken before the response starts, and given back by the body's clean-up; when sending
the headers raises (the client gone, under a server that says so as the ASGI spec asks, with an
OSError; or the task cancelled there), the body never runs. Neither launch path's server raises
there today (uvicorn's cycle drops a send to a closed connection), so this drives the app in
process with a `send` that does.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from starlette.types import Message

from app.main import create_app
from app.settings import Settings


@pytest.mark.parametrize("failure", [ConnectionResetError, asyncio.CancelledError])
async def test_a_stream_whose_headers_fail_to_send_gives_back_its_slot(
    tmp_path: Path, failure: type[BaseException]
) -> None:
    app = create_app(Settings(data_dir=tmp_path, secret_key="s" * 48))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/channels/public:gone/stream",
        "raw_path": b"/api/channels/public:gone/stream",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "app": app,
    }
    started: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            started.append(message)
            raise failure("the client is gone")

    async with app.router.lifespan_context(app):
        scope["state"] = {}
        connections = app.state.services.connections
        with contextlib.suppress(failure):
            await app(scope, receive, send)
        assert started and started[0]["status"] == 200
        assert connections.open == 0
        assert not any(connections._by_ip.values())  # none counted (a zero may be kept)
