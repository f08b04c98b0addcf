"""fourcast.client and a WebSocket closed 1013 (try again later) before its `subscribe` is
acknowledged, in front of a real server on both launch paths.

fourcast itself refuses at the handshake (429, 503) rather than closing 1013, so the close comes
from what stands in front of it (a proxy, a load balancer draining): here a stub WebSocket server
that takes the first connection and closes it 1013. The server asked for a wait, not for another
transport: `auto` waits at least 5 s and tries the WebSocket again, as after a close 1008 for abuse,
instead of stepping down to SSE at once.
"""

from __future__ import annotations

from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from app.client.transports import ws as ws_transport
from tests.client.retried import follow_until_live
from tests.fixtures.server import ServerFactory

CHANNEL = "room:later"


async def try_later(ws: ServerConnection) -> None:
    """The stub in front: reads the `subscribe`, then closes 1013 without acknowledging it."""
    await ws.recv()
    await ws.close(ws_transport.CLOSE_TRY_LATER, "try again later")


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_a_close_1013_is_retried_on_the_websocket_after_the_wait_not_stepped_down(
    start_server: ServerFactory, launch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_server(launch=launch)
    real_connect = ws_transport.connect
    connections = 0

    async with serve(try_later, "127.0.0.1", 0, subprotocols=[ws_transport.SUBPROTOCOL]) as stub:
        stub_url = f"ws://127.0.0.1:{stub.sockets[0].getsockname()[1]}/ws"

        async def first_to_the_stub(url: str, *args: Any, **kwargs: Any) -> Any:
            nonlocal connections
            connections += 1
            return await real_connect(stub_url if connections == 1 else url, *args, **kwargs)

        monkeypatch.setattr(ws_transport, "connect", first_to_the_stub)
        followed = await follow_until_live(server.url, "patient", CHANNEL, "now")
    statuses, published, event = followed.statuses, followed.published, followed.received
    assert published is not None and event is not None and event.id == published.id
    assert connections == 2, statuses
    retries = followed.retries()
    assert len(retries) == 1, statuses
    assert "1013" in (retries[0].reason or ""), statuses
    assert retries[0].delay is not None and retries[0].delay >= ws_transport.TRY_LATER_DELAY
    assert followed.sleeps.delays == [retries[0].delay]
    # `auto` kept the WebSocket: the server said "later", not "this transport fails".
    assert {s.transport for s in statuses} == {"websocket"}, statuses
