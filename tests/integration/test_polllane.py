"""Polls served in the server's quick lane (app/server/quick.py, app/web/polllane.py), checked at
the HTTP level with raw sockets: the same answers as the ASGI route, parked long polls woken,
timed out and forgotten when their client leaves, pipelining and HTTP/1.0 honoured."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest

from tests.clients import eventually, parked_polls, publish_many, until_parked
from tests.fixtures.server import ServerFactory, ServerProcess


class Raw:
    """One keep-alive HTTP/1.1 connection, written and read by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, server: ServerProcess) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        return cls(reader, writer)

    def send(self, *targets: str, extra: str = "", version: str = "1.1") -> None:
        self.writer.write(
            b"".join(
                f"GET {t} HTTP/{version}\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()
                for t in targets
            )
        )

    async def response(self, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers["content-length"]))
        return status, headers, body

    def close(self) -> None:
        self.writer.close()


def events_path(channel: str) -> str:
    return f"/api/channels/{channel}/events"


async def waiting(server: ServerProcess) -> float:
    return await parked_polls(server.url)


async def waiting_is(server: ServerProcess, count: int) -> bool:
    return await waiting(server) == count


async def test_lane_answers_as_the_asgi_route_does(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(access_log=True)
    channel = "public:lane-same"
    await publish_many(server.url, channel, 3, server.service_headers)
    conn = await Raw.open(server)
    target = events_path(channel) + "?after=1&limit=5"
    conn.send(target)
    quick = await conn.response()
    # A GET that declares a body is never taken by the lane: the ordinary ASGI route answers.
    conn.send(target, extra="Content-Length: 0\r\n")
    routed = await conn.response()
    conn.close()
    assert quick[0] == routed[0] == 200
    quick_body, routed_body = orjson.loads(quick[2]), orjson.loads(routed[2])
    assert [e["data"]["n"] for e in quick_body["events"]] == [2, 3]
    assert quick_body["events"] == routed_body["events"]
    assert quick_body["reset"] is routed_body["reset"] is False
    assert quick_body["next"].split("_")[0] == routed_body["next"].split("_")[0] == "3"
    assert set(quick[1]) == set(routed[1])
    for name in ("content-type", "x-content-type-options", "referrer-policy", "server"):
        assert quick[1][name] == routed[1][name], name

    # Both are in the access log, the quick one as uvicorn would have written it.
    logged = f'"GET {target.replace(":", "%3A")} HTTP/1.1" 200 OK'

    async def both_logged() -> bool:
        return server.log().count(logged) == 2

    assert await eventually(both_logged)


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_every_access_line_is_uvicorns_default_text(start_server, launch: str) -> None:  # type: ignore[no-untyped-def]
    """On both launch paths, what uvicorn's own formatter would print for each request: the
    connection's first (uvicorn's stock path under plain uvicorn) and the quick lane's."""
    server = start_server(access_log=True, launch=launch)
    channel = "public:lane-line"
    await publish_many(server.url, channel, 2, server.service_headers)
    conn = await Raw.open(server)
    port = conn.writer.get_extra_info("sockname")[1]
    targets = [events_path(channel) + f"?after={n}" for n in (0, 1, 2)]
    for target in targets:
        conn.send(target)
        assert (await conn.response())[0] == 200
    conn.send("/no-such-page")
    assert (await conn.response())[0] == 404
    conn.close()
    expected = [
        f'INFO:     127.0.0.1:{port} - "GET {target.replace(":", "%3A")} HTTP/1.1" 200 OK'
        for target in targets
    ] + [f'INFO:     127.0.0.1:{port} - "GET /no-such-page HTTP/1.1" 404 Not Found']

    async def all_logged() -> bool:
        return [line for line in server.log().splitlines() if f":{port} - " in line] == expected

    assert await eventually(all_logged)


async def test_parked_polls_are_woken_together_and_forgotten_when_their_client_leaves(
    server: ServerProcess,
) -> None:
    channel = "public:lane-park"
    head = (await publish_many(server.url, channel, 1, server.service_headers))[0]["id"]
    conns = [await Raw.open(server) for _ in range(3)]
    for conn in conns:
        conn.send(events_path(channel) + f"?after={head}&wait=20")
    assert await eventually(lambda: waiting_is(server, 3))
    conns[0].close()  # the client goes away while its poll waits
    assert await eventually(lambda: waiting_is(server, 2))
    started = time.monotonic()
    published = await publish_many(server.url, channel, 1, server.service_headers, start=2)
    for conn in conns[1:]:
        status, _, body = await conn.response(timeout=5)
        assert status == 200
        assert [e["id"] for e in orjson.loads(body)["events"]] == [published[0]["id"]]
    assert time.monotonic() - started < 10  # woken by the event, not by their 20 s wait
    assert await waiting(server) == 0
    for conn in conns[1:]:
        conn.close()


async def test_parked_poll_times_out_empty_with_its_cursor(server: ServerProcess) -> None:
    channel = "public:lane-timeout"
    head = (await publish_many(server.url, channel, 1, server.service_headers))[0]["id"]
    conn = await Raw.open(server)
    started = time.monotonic()
    conn.send(events_path(channel) + f"?after={head}&wait=1")
    status, _, body = await conn.response()
    elapsed = time.monotonic() - started
    conn.close()
    answer = orjson.loads(body)
    assert status == 200
    assert answer["events"] == [] and answer["reset"] is False
    assert answer["next"].split("_")[0] == head
    assert 0.9 <= elapsed < 10  # its 1 s wait, and no hang (a busy machine answers late)
    assert await waiting(server) == 0


async def test_pipelined_requests_are_answered_in_order(server: ServerProcess) -> None:
    channel = "public:lane-pipeline"
    head = (await publish_many(server.url, channel, 1, server.service_headers))[0]["id"]
    conn = await Raw.open(server)
    # A long poll, then a short poll and a page on the same connection before any answer.
    conn.send(events_path(channel) + f"?after={head}&wait=20", events_path(channel), "/healthz")
    await until_parked(server.url, 1)
    published = await publish_many(server.url, channel, 1, server.service_headers, start=2)
    first = await conn.response()
    second = await conn.response()
    third = await conn.response()
    conn.close()
    assert [e["id"] for e in orjson.loads(first[2])["events"]] == [published[0]["id"]]
    assert orjson.loads(second[2])["next"].split("_")[0] == published[0]["id"]
    assert third[0] == 200 and b"events" not in third[2]


async def test_http10_poll_is_answered_and_the_connection_closed(server: ServerProcess) -> None:
    channel = "public:lane-http10"
    await publish_many(server.url, channel, 2, server.service_headers)
    conn = await Raw.open(server)
    conn.send(events_path(channel) + "?after=0", version="1.0")
    status, headers, body = await conn.response()
    assert status == 200 and headers["connection"] == "close"
    assert len(orjson.loads(body)["events"]) == 2
    assert await asyncio.wait_for(conn.reader.read(), 5) == b""  # closed by the server
    conn.close()


async def test_idle_keep_alive_connection_is_closed_after_its_timeout(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(http_keep_alive=1)
    busy, idle = await Raw.open(server), await Raw.open(server)
    for conn in (busy, idle):
        conn.send(events_path("public:lane-idle"))
        assert (await conn.response())[0] == 200
    # One keeps polling, one says nothing: only the silent one is closed, within a second or so.
    started = time.monotonic()
    for _ in range(6):
        await asyncio.sleep(0.4)
        busy.send(events_path("public:lane-idle"))
        assert (await busy.response())[0] == 200
    assert await asyncio.wait_for(idle.reader.read(), 5) == b""
    assert time.monotonic() - started < 3.5
    busy.send(events_path("public:lane-idle"))
    assert (await busy.response())[0] == 200
    busy.close()
    idle.close()


async def test_a_request_pipelined_behind_a_quick_answer_is_not_taken_for_idle(
    start_server,  # type: ignore[no-untyped-def]
) -> None:
    server = start_server(http_keep_alive=1)
    channel = "public:lane-busy"
    head = (await publish_many(server.url, channel, 1, server.service_headers))[0]["id"]
    conn = await Raw.open(server)
    # A short poll answered at once, then a long poll in the same read: the connection is busy
    # with the second for 3 s, longer than the keep-alive timeout.
    started = time.monotonic()
    conn.send(events_path(channel), events_path(channel) + f"?after={head}&wait=3")
    assert (await conn.response())[0] == 200
    status, _, body = await conn.response(timeout=6)
    assert status == 200 and orjson.loads(body)["events"] == []
    assert time.monotonic() - started >= 2.5
    conn.close()


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_pipelined_polls_from_a_peer_that_does_not_read_stay_bounded(
    server: ServerProcess,
) -> None:
    channel = "public:lane-flood"
    for n in range(20):
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                f"{server.url}{events_path(channel)}",
                json={"type": "t", "data": "x" * 50_000, "n": n},
                headers=server.service_headers,
            )
            assert answer.status_code == 201
    assert server.process is not None
    before = rss_mib(server.process.pid)
    conn = await Raw.open(server)
    # 300 polls of ~1 MB answers each, in one write, and nothing read back.
    conn.send(*[events_path(channel) + "?after=0&limit=1000"] * 300)
    await asyncio.sleep(3)
    grown = rss_mib(server.process.pid) - before
    conn.close()
    assert grown < 60, f"server memory grew {grown:.0f} MiB for a peer that reads nothing"
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{server.url}/healthz")).status_code == 200


async def test_a_long_poll_on_a_never_written_channel_is_woken_by_its_first_event(
    server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        # Both ways in: the lane (whose poll core awaits a channel not yet in memory)
        # and the ASGI route itself (a GET declaring a body).
        for channel, headers in (
            ("public:fresh-a", {}),
            ("public:fresh-b", {"Content-Length": "0"}),
        ):
            started = time.monotonic()
            poll = asyncio.create_task(
                client.get(f"{events_path(channel)}?after=0&wait=10", headers=headers)
            )
            await until_parked(server.url, 1)
            published = await client.post(
                events_path(channel), json={"type": "t", "data": 1}, headers=server.service_headers
            )
            answer = (await poll).json()
            assert [e["id"] for e in answer["events"]] == [published.json()["id"]]
            assert time.monotonic() - started < 3


async def test_service_keys_and_bad_credentials_are_answered_in_the_lane(
    server: ServerProcess,
) -> None:
    channel = "room:lane-service"  # not public: only a service (or a member) may read it
    head = (await publish_many(server.url, channel, 1, server.service_headers))[0]["id"]
    conn = await Raw.open(server)
    auth = server.service_headers["Authorization"]
    conn.send(events_path(channel) + f"?after={head}&wait=20", extra=f"Authorization: {auth}\r\n")
    assert await eventually(lambda: waiting_is(server, 1))  # parked: the lane took it
    await publish_many(server.url, channel, 1, server.service_headers, start=2)
    status, _, body = await conn.response()
    assert status == 200 and len(orjson.loads(body)["events"]) == 1
    for bad in ("Bearer wrong-key-0123456789", "Basic abc", "Bearer "):
        conn.send(events_path(channel), extra=f"Authorization: {bad}\r\n")
        status, _, body = await conn.response()
        assert status == 401, bad
        assert orjson.loads(body)["error"]["code"] in ("invalid_token", "unauthorized"), body
    conn.close()


@pytest.mark.parametrize("launch", ["python -m app", "uvicorn"])
async def test_a_wait_longer_than_the_servers_own_bound_is_held_that_long(
    start_server: ServerFactory, launch: str
) -> None:
    """Clients cannot know a server's `long_poll_max_wait`: the Python and browser clients ask
    for 25 s, which a server set to hold 1 s answered with 400 (and the subscription ended)."""
    server = start_server(launch=launch, long_poll_max_wait=1)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        head = (await client.get("/api/channels/public:short-wait/events")).json()["next"]
        held = await client.get(
            "/api/channels/public:short-wait/events", params={"after": head, "wait": "25"}
        )
        assert held.status_code == 200, held.text
        assert held.json()["events"] == []
        too_long = await client.get(
            "/api/channels/public:short-wait/events", params={"after": head, "wait": "61"}
        )
        assert too_long.status_code == 400
