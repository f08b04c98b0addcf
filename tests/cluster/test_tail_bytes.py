"""Large events published round the channels a node listens to: the tails it keeps to answer
polls near the head are bounded by the bytes they hold together (`redis_tail_max_bytes`), not
only by their count per channel; a tail cut short sends polls from further back to Redis, and
every event still reads back in order (docs/scaling.md, "Reading history")."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.clients import Reader, make_reader
from tests.fixtures.server import Servers

pytestmark = pytest.mark.redis

CHANNELS = 4
PER_CHANNEL = 32
PAD = "x" * 16384
BOUND = 256 * 1024


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match is not None, name
    return float(match[1])


async def test_tails_are_bounded_by_their_bytes_and_polls_read_every_event(
    shared_redis: str, servers: Servers
) -> None:
    node = servers.start(redis_url=shared_redis, redis_tail_max_bytes=BOUND)
    name = uuid.uuid4().hex[:8]
    channels = [f"public:tail-{name}-{i}" for i in range(CHANNELS)]
    readers: list[Reader] = []
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as client:
        try:
            for channel in channels:
                # Listened: the node's reader takes the channel's entries into its tail.
                readers.append(await make_reader("sse", node.url, channel).start())
            for n in range(PER_CHANNEL):
                for channel in channels:
                    body = {"type": "blob", "data": {"n": n, "pad": PAD}}
                    published = await client.post(
                        f"/api/channels/{channel}/events", json=body, headers=node.service_headers
                    )
                    assert published.status_code == 201, published.text
            # Each event reached its reader, so the node's reader took every one into a tail.
            for reader in readers:
                await reader.wait_for(PER_CHANNEL)
                assert [e["data"]["n"] for e in reader.durable] == list(range(PER_CHANNEL))
            metrics = (await client.get("/metrics")).text
            # 2 MiB taken, well under 256 events a channel: only the bytes bound cut the tails.
            assert 0 < _metric(metrics, "fourcast_redis_tail_bytes") <= BOUND
            assert _metric(metrics, "fourcast_redis_tail_events") < CHANNELS * PER_CHANNEL
            # From the first event on (the tail's base long gone) and from the last but one (in
            # the newest tail), polls read every event after the cursor, in order.
            for channel, reader in zip(channels, readers, strict=True):
                for start in (0, PER_CHANNEL - 2):
                    after, got = reader.durable[start]["id"], []
                    while True:
                        answer = await client.get(
                            f"/api/channels/{channel}/events",
                            params={"after": after, "limit": "5"},
                        )
                        assert answer.status_code == 200, answer.text
                        page = answer.json()
                        if not page["events"]:
                            break
                        got += [e["data"]["n"] for e in page["events"]]
                        after = page["next"]
                    assert got == list(range(start + 1, PER_CHANNEL))
        finally:
            for reader in readers:
                await reader.stop()
