"""fourcast.client and a WebSocket closed with 1008 for abuse, on both launch paths.

docs/protocol.md gives 1008 two causes: a failed `auth` op (bad credentials), and repeated abuse
(more than 20 errors in 10 s). This client sends its credentials in the handshake, never in an
`auth` op, so a 1008 is abuse: the person is still signed in, and the subscription backs off at
least 5 s and reconnects instead of ending with an AuthError. The abuse is real: the first
connection, the client's own socket, sends the server bad messages before its `subscribe`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.client.transports import ws as ws_transport
from app.web.ws.connection import MAX_ERRORS
from tests.client.retried import follow_until_live
from tests.fixtures.server import ServerFactory

CHANNEL = "room:rowdy"


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_a_close_for_abuse_is_retried_after_a_pause_not_taken_for_bad_credentials(
    start_server: ServerFactory, launch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_server(launch=launch)
    real_connect = ws_transport.connect
    connections = 0

    async def abusive_first_connect(*args: Any, **kwargs: Any) -> Any:
        """The first socket goes over the error budget (one more bad message than it allows)."""
        nonlocal connections
        connections += 1
        ws = await real_connect(*args, **kwargs)
        if connections == 1:
            for _ in range(MAX_ERRORS + 1):
                await ws.send(json.dumps({"op": "no-such-op"}))
        return ws

    monkeypatch.setattr(ws_transport, "connect", abusive_first_connect)
    # Before the fix, the subscription ended with an AuthError, which this raises.
    followed = await follow_until_live(server.url, "rowdy", CHANNEL, "back")
    statuses, published, event = followed.statuses, followed.published, followed.received
    assert published is not None and event is not None and event.id == published.id
    assert connections == 2, statuses
    retries = followed.retries()
    assert len(retries) == 1, statuses
    assert "1008" in (retries[0].reason or ""), statuses
    assert retries[0].delay is not None and retries[0].delay >= ws_transport.ABUSE_DELAY
    assert followed.sleeps.delays == [retries[0].delay]
    # `auto` kept the WebSocket: the server said "later", not "this transport fails".
    assert {s.transport for s in statuses} == {"websocket"}, statuses
