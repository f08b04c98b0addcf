"""Identity across nodes: tickets single-use on every node and across restarts, sign-out closing
the person's sockets on the other node and refusing the token everywhere."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.clients import WsReader, eventually, parked_polls, sign_in, until_parked
from tests.cluster.conftest import Cluster, start_cluster
from tests.fixtures.faultproxy import fault_proxy
from tests.fixtures.redis import RedisServer
from tests.fixtures.server import Servers


@pytest.fixture(scope="module")
def identity_cluster(
    shared_redis: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    nodes = start_cluster(tmp_path_factory.mktemp("identity"), shared_redis)
    yield nodes
    nodes.servers.stop_all()


async def whoami(url: str, token: str) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.get("/api/session", headers={"Authorization": f"Bearer {token}"})
        return response.status_code


async def test_sign_out_on_one_node_closes_the_socket_on_the_other_and_the_token_is_dead(
    identity_cluster: Cluster,
) -> None:
    a, b = identity_cluster.nodes
    token, user = await sign_in(a.url, "Two Tabs")
    other_tab = await WsReader(b.url, f"user:{user['id']}", token=token).start()
    try:
        async with httpx.AsyncClient(base_url=a.url, timeout=10) as client:
            out = await client.delete("/api/session", headers={"Authorization": f"Bearer {token}"})
            assert out.status_code == 204
        await asyncio.wait_for(other_tab.ended.wait(), 2)
        assert other_tab.closed_code == 4401
    finally:
        await other_tab.stop()
    for node in (a, b):
        assert await whoami(node.url, token) == 401
        async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
            poll = await client.get(
                f"/api/channels/user:{user['id']}/events",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert poll.status_code == 401
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(
                node.ws_url,
                subprotocols=["fourcast.v1", f"fourcast.bearer.{token}"],  # type: ignore[list-item]
            ):
                pass
        assert refused.value.response.status_code == 401


async def test_sign_out_on_one_node_answers_the_persons_waiting_long_poll_on_the_other(
    identity_cluster: Cluster,
) -> None:
    """At once, not at its wait's end: a stayer's poll of the same wait on that node still
    waits when it is answered."""
    a, b = identity_cluster.nodes
    leaver, left = await sign_in(a.url, "Leaver")
    stayer, stays = await sign_in(a.url, "Stayer")

    async def long_poll(client: httpx.AsyncClient, token: str, user: str) -> httpx.Response:
        channel, headers = f"/api/channels/user:{user}/events", {"Authorization": f"Bearer {token}"}
        head = await client.get(channel, params={"after": "0"}, headers=headers)
        params = {"after": head.json()["next"], "wait": "60"}
        return await client.get(channel, params=params, headers=headers)

    async with httpx.AsyncClient(base_url=b.url, timeout=90) as client:
        leaving = asyncio.create_task(long_poll(client, leaver, left["id"]))
        staying = asyncio.create_task(long_poll(client, stayer, stays["id"]))
        await until_parked(b.url, 2)
        async with httpx.AsyncClient(base_url=a.url, timeout=10) as other:
            out = await other.delete("/api/session", headers={"Authorization": f"Bearer {leaver}"})
            assert out.status_code == 204
        refused = await leaving
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_revoked"
        assert await parked_polls(b.url) == 1 and not staying.done()
        staying.cancel()


async def test_a_ticket_redeemed_on_one_node_is_refused_on_the_other_and_after_restarts(
    identity_cluster: Cluster, tmp_path: Path
) -> None:
    a, b = identity_cluster.nodes
    token, user = await sign_in(a.url, "Ticket Holder")
    gone, _ = await sign_in(b.url, "Signed Out")
    channel = f"/api/channels/user:{user['id']}/events"
    async with httpx.AsyncClient(timeout=10) as client:
        issued = await client.post(
            f"{a.url}/api/tickets", headers={"Authorization": f"Bearer {token}"}
        )
        ticket = issued.json()["ticket"]
        assert (await client.get(a.url + channel, params={"ticket": ticket})).status_code == 200
        on_b = await client.get(b.url + channel, params={"ticket": ticket})
        assert on_b.status_code == 401 and on_b.json()["error"]["code"] == "invalid_ticket"
        signed_out = await client.delete(
            f"{b.url}/api/session", headers={"Authorization": f"Bearer {gone}"}
        )
        assert signed_out.status_code == 204
    for node in (a, b):
        node.stop()
    for node in (a, b):
        node.start()
    identity_cluster.assert_alive()
    async with httpx.AsyncClient(timeout=10) as client:
        for node in (a, b):
            again = await client.get(node.url + channel, params={"ticket": ticket})
            assert again.status_code == 401 and again.json()["error"]["code"] == "invalid_ticket"
    # A revocation made before the restart still holds on both nodes; the other session lives.
    for node in (a, b):
        assert await whoami(node.url, gone) == 401
        assert await whoami(node.url, token) == 200


async def test_a_node_whose_redis_connections_went_half_open_still_learns_of_sign_outs(
    shared_redis: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Redis's host crashed, or a NAT forgot the flow: node B's connections are open on its side
    and gone on Redis's, with no FIN or RST. Its commands and reads find out by their timeouts;
    its pub/sub subscriptions heard only silence, which looked like a quiet channel for ever, so
    a sign-out on node A was never applied on B (and B lost every ephemeral event)."""
    with fault_proxy("127.0.0.1", redis_server.port) as proxy:
        servers = Servers(tmp_path)
        try:
            a = servers.start(redis_url=shared_redis)
            b = servers.start(redis_url=f"redis://{proxy.url_host_port}/0")
            token, _ = await sign_in(a.url, "Half Open")
            assert await whoami(b.url, token) == 200
            assert proxy.sever() > 0
            async with httpx.AsyncClient(base_url=a.url, timeout=10) as client:
                out = await client.delete(
                    "/api/session", headers={"Authorization": f"Bearer {token}"}
                )
                assert out.status_code == 204

            async def refused_on_b() -> bool:
                return await whoami(b.url, token) == 401

            await eventually(refused_on_b, timeout=90, interval=0.5)
        finally:
            servers.stop_all()
