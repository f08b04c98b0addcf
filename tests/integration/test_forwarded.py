"""uvicorn's command line keeps its proxy-headers middleware (on by default, trusting
127.0.0.1): a request a trusted proxy forwards is its X-Forwarded-For client's, for polls
answered by the quick lane as for everything else. `python -m app` turns the middleware off
(FOURCAST_TRUSTED_PROXIES is its own way), so there every request is the peer's."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.server import LAUNCH_COMMANDS, ServerFactory

FORWARDED_BY_UVICORN = {"python -m app": False, "uvicorn": True, "uvicorn --http --ws": True}


@pytest.mark.parametrize("launch", list(LAUNCH_COMMANDS))
def test_a_forwarded_poll_spends_its_clients_budget_as_a_stream_does(
    start_server: ServerFactory, launch: str
) -> None:
    """Reads from the start spend a budget per client address (one read here, never
    refilled in the test's time): three forwarded clients behind one proxy each have their
    own, on every request of a kept-alive connection, when uvicorn takes the header."""
    server = start_server(launch=launch, read_all_burst=1, read_all_rate=0.0001)
    events = f"{server.url}/api/channels/public:fwd/events"
    published = httpx.post(events, json={"type": "t", "data": 1}, headers=server.service_headers)
    assert published.status_code == 201
    with httpx.Client(timeout=10) as client:  # one kept-alive connection: its later requests too
        polls = [
            client.get(f"{events}?after=0", headers={"X-Forwarded-For": f"203.0.113.{n}"})
            for n in (1, 2, 3)
        ]
        with client.stream(
            "GET",
            f"{server.url}/api/channels/public:fwd/stream?after=0",
            headers={"X-Forwarded-For": "203.0.113.4"},
        ) as stream:
            streamed = stream.status_code
    statuses = [poll.status_code for poll in polls]
    if FORWARDED_BY_UVICORN[launch]:
        assert statuses == [200, 200, 200] and streamed == 200
    else:
        assert statuses == [200, 429, 429] and streamed == 429
