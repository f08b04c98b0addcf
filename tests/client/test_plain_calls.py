"""fourcast.client's one-off calls (`info`, `sign_in`) against a server that is away: the
client's own UnavailableError, as `publish` and subscriptions report it, not httpx's exception."""

from __future__ import annotations

import pytest

from app.client import Client, UnavailableError
from tests.fixtures.server import ServerFactory


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_info_and_sign_in_raise_unavailable_while_the_server_is_away(
    start_server: ServerFactory, launch: str
) -> None:
    server = start_server(launch=launch)
    async with Client(server.url) as client:
        assert "transports" in await client.info()
        server.kill()
        with pytest.raises(UnavailableError, match="cannot reach"):
            await client.info()
        with pytest.raises(UnavailableError, match="cannot reach"):
            await client.sign_in("ann")
        server.start()  # same port: the same client works again
        assert (await client.sign_in("ann"))["user"]["name"] == "ann"
