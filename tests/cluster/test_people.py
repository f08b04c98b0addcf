"""People across nodes: presence, typing and rate limits are one state for the whole cluster.

Both nodes share one Redis and one PostgreSQL database; a token from either node works on both.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.clients import WsReader, eventually, make_reader
from tests.cluster.conftest import Cluster
from tests.cluster.helpers import Person, seen, wait_seen

pytestmark = pytest.mark.redis


async def _transports(
    cluster: Cluster, viewer: Person, room: str, user: str
) -> list[list[str] | None]:
    """The person's transports as each node's presence endpoint lists them (None: absent)."""
    found: list[list[str] | None] = []
    for node in cluster.nodes:
        members = (await viewer.presence(node, room))["members"]
        found.append(next((m["transports"] for m in members if m["user"] == user), None))
    return found


async def test_one_person_on_two_nodes_joins_once_and_leaves_after_the_last(
    people_cluster: Cluster,
) -> None:
    a, b = people_cluster.nodes
    room = "room:two-nodes"
    watcher_a = await Person.sign_in(a, "watcher-a")
    watcher_b = await Person.sign_in(b, "watcher-b")
    dana = await Person.sign_in(a, "dana")
    watching = [
        await WsReader(a.url, room, token=watcher_a.token).start(),
        await make_reader("sse", b.url, room, token=watcher_b.token).start(),
    ]
    tabs = []
    try:
        tabs.append(await WsReader(a.url, room, token=dana.token).start())
        tabs.append(await make_reader("sse", b.url, room, token=dana.token).start())
        for watcher in watching:
            await wait_seen(watcher, "presence.join", user=dana.id)

        async def both_listed() -> bool:
            found = await _transports(people_cluster, watcher_a, room, dana.id)
            return found == [["sse", "websocket"], ["sse", "websocket"]]

        await eventually(both_listed, timeout=10)

        await tabs[0].stop()  # the WebSocket on A closes: still present through B's stream

        async def sse_only() -> bool:
            return await _transports(people_cluster, watcher_b, room, dana.id) == [["sse"]] * 2

        await eventually(sse_only, timeout=10)
        for watcher in watching:
            assert seen(watcher, "presence.leave", user=dana.id) == []

        await tabs[1].stop()  # the last one closes: dana leaves
        for watcher in watching:
            await wait_seen(watcher, "presence.leave", user=dana.id)

        async def gone() -> bool:
            return await _transports(people_cluster, watcher_a, room, dana.id) == [None, None]

        await eventually(gone, timeout=10)
        await asyncio.sleep(0.3)  # room for a second join or leave to show up
        for watcher in watching:
            assert len(seen(watcher, "presence.join", user=dana.id)) == 1, watcher.transport
            assert len(seen(watcher, "presence.leave", user=dana.id)) == 1, watcher.transport
    finally:
        for reader in (*tabs, *watching):
            await reader.stop()


async def test_a_poller_alternating_nodes_stays_present_and_leaves_within_its_lease(
    people_cluster: Cluster, people_settings: dict[str, Any]
) -> None:
    a, b = people_cluster.nodes
    lease = float(people_settings["presence_lease"])
    room = "room:poll-hop"
    watcher = await Person.sign_in(b, "watcher")
    poller = await Person.sign_in(a, "poller")
    watching = await WsReader(b.url, room, token=watcher.token).start()
    try:
        async with httpx.AsyncClient(headers=poller.headers, timeout=10) as client:
            cursor = "0"
            started = time.monotonic()
            polls = 0
            # Several leases of polling, every request on the other node, a third of a lease apart.
            while time.monotonic() - started < lease * 2.5:
                node = people_cluster.nodes[polls % 2]
                response = await client.get(
                    f"{node.url}/api/channels/{room}/events", params={"after": cursor}
                )
                assert response.status_code == 200, response.text
                cursor = response.json()["next"]
                polls += 1
                await asyncio.sleep(lease / 3)  # the poller's own interval
        await wait_seen(watching, "presence.join", user=poller.id)
        assert seen(watching, "presence.leave", user=poller.id) == []
        stopped = time.monotonic()
        await wait_seen(watching, "presence.leave", user=poller.id, timeout=lease + 5)
        assert time.monotonic() - stopped < lease + 3
        assert len(seen(watching, "presence.join", user=poller.id)) == 1
        assert len(seen(watching, "presence.leave", user=poller.id)) == 1
    finally:
        await watching.stop()


async def test_typing_is_throttled_across_nodes(
    people_cluster: Cluster, people_settings: dict[str, Any]
) -> None:
    a, b = people_cluster.nodes
    throttle = float(people_settings["typing_throttle"])
    room = "room:typing"
    watcher = await Person.sign_in(a, "watcher")
    typist = await Person.sign_in(a, "typist")
    watching = await WsReader(a.url, room, token=watcher.token).start()
    try:
        first = await typist.publish(a, room, "typing", {})
        sent = time.monotonic()
        assert first.status_code == 201, first.text
        again = await typist.publish(b, room, "typing", {})
        assert again.status_code == 202, again.text
        assert again.json()["suppressed"] is True
        await wait_seen(watching, "typing", user=typist.id)

        # The typing state is the cluster's: the other node lists the typist too.
        state = await watcher.presence(b, room)
        assert [t["user"] for t in state["typing"]] == [typist.id]

        # Past the throttle, the other node forwards the next one.
        async def forwarded() -> bool:
            response = await typist.publish(b, room, "typing", {})
            assert response.status_code in (201, 202), response.text
            return response.status_code == 201

        await eventually(forwarded, timeout=throttle + 5, interval=0.1)
        assert time.monotonic() - sent >= throttle * 0.9

        async def two_seen() -> bool:
            return len(seen(watching, "typing", user=typist.id)) == 2

        await eventually(two_seen, timeout=5)
    finally:
        await watching.stop()


async def test_a_person_publishing_through_both_nodes_is_limited_in_total(
    people_cluster: Cluster, people_settings: dict[str, Any]
) -> None:
    rate = float(people_settings["publish_rate"])
    burst = int(people_settings["publish_burst"])
    room = "room:limits"
    spammer = await Person.sign_in(people_cluster.a, "spammer")
    # Opened first, so that its publish follows the last REST one at once.
    ws = await WsReader(people_cluster.b.url, room, token=spammer.token).start()
    statuses: list[int] = []
    started = time.monotonic()
    async with httpx.AsyncClient(headers=spammer.headers, timeout=10) as client:
        for n in range(burst * 2 + 4):
            node = people_cluster.nodes[n % 2]
            response = await client.post(
                f"{node.url}/api/channels/{room}/events",
                json={"type": "chat.message", "data": {"text": f"m{n}"}},
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
                assert response.json()["error"]["code"] == "rate_limited"
            else:
                assert response.status_code == 201, response.text
    elapsed = time.monotonic() - started
    try:
        # The WebSocket publish on the other node shares the same bucket.
        reply = await ws.request(
            {"op": "publish", "channel": room, "type": "chat.message", "data": {"text": "more"}}
        )
        assert reply["op"] == "error" and reply["code"] == "rate_limited", reply
    finally:
        await ws.stop()
    accepted = statuses.count(201)
    # One bucket for the cluster: the burst plus what refilled meanwhile (and one of slack).
    assert accepted <= burst + int(elapsed * rate) + 1, (accepted, elapsed, statuses)
    assert accepted >= burst - 1, statuses
    assert statuses[-1] == 429, statuses
