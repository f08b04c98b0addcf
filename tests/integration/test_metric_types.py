"""Running counts are Prometheus counters (`# TYPE <name>_total counter`), not gauges: `rate()`
and `increase()` take a counter's restarts for resets, and dashboards sum them across nodes.
They are read from plain integers when /metrics is scraped, as every bound's size is."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.fixtures.server import ServerFactory

RUNNING_COUNTS = (
    "fourcast_sockets_closed_early",
    "fourcast_bus_channels_evicted",
    "fourcast_poll_pages_truncated",
    "fourcast_presence_untracked",
    "fourcast_presence_untracked_per_address",
    "fourcast_typing_dropped",
    "fourcast_budget_refusals",
    "fourcast_slow_readers_cut_off",
)


def types(page: str) -> dict[str, str]:
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", page, re.M))


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_running_counts_are_counters(start_server: ServerFactory, launch: str) -> None:
    server = start_server(launch=launch, poll_max_bytes=64 * 1024)
    channel = "public:counted"
    async with httpx.AsyncClient(
        base_url=server.url, headers=server.service_headers, timeout=10
    ) as client:
        for n in range(2):
            published = await client.post(
                f"/api/channels/{channel}/events", json={"type": "big", "data": [n, "x" * 40_000]}
            )
            assert published.status_code == 201
        page = await client.get(f"/api/channels/{channel}/events?after=0")
        assert page.json()["truncated"] is True
        metrics = (await client.get("/metrics")).text
    found = types(metrics)
    for name in RUNNING_COUNTS:
        assert found.get(f"{name}_total") == "counter", (name, found.get(name))
        assert name not in found, name
    # Folded in from the running total when /metrics is read.
    assert re.search(r"^fourcast_poll_pages_truncated_total 1\.0$", metrics, re.M), metrics
