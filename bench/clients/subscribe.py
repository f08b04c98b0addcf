"""Connect one subscriber to a target's channel, over WebSocket or SSE, and wait until it is
subscribed: what the load generator calls for every reader it holds."""

from __future__ import annotations

import asyncio

import orjson

from bench.clients.sse import SSEClient
from bench.clients.target import Target
from bench.clients.websocket import WSClient, ws_connect_picows
from bench.clients.websocket_aiohttp import AiohttpSub
from bench.track import Tracker


async def ws_subscribe(kind: str, target: Target, tracker: Tracker, ref: int = 1) -> WSClient:
    """A WebSocket subscriber on the target's channel, connected and subscribed (ack received)."""
    port, channel = target.port, target.channel
    sub = tracker.new_sub()
    if target.nchan:
        client: WSClient = await ws_connect_picows(
            f"ws://127.0.0.1:{port}/sub?id={channel}", sub, None, [], raw=True
        )
        await asyncio.wait_for(client.ready, 30)
        return client
    url = f"ws://127.0.0.1:{port}/ws"
    protocols = ["fourcast.v1"] if target.server == "fourcast" else []
    if target.auth == "key" and target.credential and target.server == "fourcast":
        protocols.append(f"fourcast.bearer.{target.credential}")
    headers = {k: v for k, v in target.headers().items() if k == "Cookie"}
    first = orjson.dumps({"op": "subscribe", "channel": channel, "ref": ref})
    if kind == "aiohttp":
        client = await AiohttpSub(sub, first).connect(url, protocols, headers)
    else:
        client = await ws_connect_picows(url, sub, first, protocols, headers=headers)
    await asyncio.wait_for(client.ready, 30)
    return client


async def sse_subscribe(target: Target, tracker: Tracker) -> SSEClient:
    port = target.port
    request = (
        f"GET {target.stream_path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Accept: text/event-stream\r\n{target.header_lines()}\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    sub = tracker.new_sub()
    raw = target.nchan
    _t, proto = await loop.create_connection(
        lambda: SSEClient(sub, request, raw), "127.0.0.1", port
    )
    await asyncio.wait_for(proto.ready, 30)
    return proto
