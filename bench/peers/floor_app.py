"""Stack floor: the simplest Starlette app a Python dev would write.

Speaks the project's draft protocol so the `project` adapter is exercised too:
  POST /api/channels/{ch}/events          {"type":..,"data":{..}} -> 201
  GET  /api/channels/{ch}/events?after=C[&wait=30]   short / long poll
  GET  /api/channels/{ch}/stream          SSE via sse-starlette, one asyncio.Queue per subscriber
  WS   /ws   {"op":"subscribe","channel":..} -> {"op":"event",...}
Naive on purpose: WS fan-out awaits ws.send_text() per subscriber inside the publish request.
"""

import asyncio
import contextlib
import itertools
import json
from collections import deque

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

LOG_LEN = 10_000


class Channel:
    def __init__(self):
        self.last_id = 0
        self.log = deque(maxlen=LOG_LEN)  # recent events for polling
        self.queues = set()  # SSE subscribers
        self.sockets = set()  # WS subscribers
        self.wake = asyncio.Event()  # long-poll waiters

    def since(self, after):
        first = self.last_id - len(self.log) + 1
        return list(itertools.islice(self.log, max(0, after + 1 - first), None))


channels: dict[str, Channel] = {}


def chan(name):
    return channels.setdefault(name, Channel())


async def publish(request):
    name = request.path_params["channel"]
    ch, body = chan(name), await request.json()
    ch.last_id += 1
    ev = {"id": str(ch.last_id), "type": body.get("type", "message"), "data": body.get("data")}
    ch.log.append(ev)
    for q in ch.queues:
        q.put_nowait(ev)
    ch.wake.set()
    ch.wake = asyncio.Event()
    text = json.dumps({"op": "event", "channel": name, **ev})
    for ws in list(ch.sockets):
        try:
            await ws.send_text(text)
        except Exception:
            ch.sockets.discard(ws)
    return JSONResponse({"id": ev["id"]}, status_code=201)


async def poll(request):
    ch = chan(request.path_params["channel"])
    after = request.query_params.get("after")
    if after is None:  # no cursor yet: start from "now"
        return JSONResponse({"events": [], "next": str(ch.last_id)})
    after, wait = int(after), min(float(request.query_params.get("wait", 0)), 30)
    if wait and ch.last_id <= after:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(ch.wake.wait(), wait)
    return JSONResponse({"events": ch.since(after), "next": str(ch.last_id)})


async def stream(request):
    ch, q = chan(request.path_params["channel"]), asyncio.Queue()
    ch.queues.add(q)

    async def events():
        try:
            while True:
                ev = await q.get()
                yield {"id": ev["id"], "data": json.dumps(ev)}
        finally:
            ch.queues.discard(q)

    return EventSourceResponse(events(), ping=15)


async def websocket(ws):
    await ws.accept()
    joined = []
    try:
        while True:
            msg = json.loads(await ws.receive_text())
            if msg.get("op") == "subscribe":
                ch = chan(msg["channel"])
                ch.sockets.add(ws)
                joined.append(ch)
                await ws.send_text(json.dumps({"op": "subscribed", "channel": msg["channel"]}))
    except WebSocketDisconnect:
        pass
    finally:
        for ch in joined:
            ch.sockets.discard(ws)


app = Starlette(
    routes=[
        Route("/api/channels/{channel}/events", publish, methods=["POST"]),
        Route("/api/channels/{channel}/events", poll, methods=["GET"]),
        Route("/api/channels/{channel}/stream", stream),
        WebSocketRoute("/ws", websocket),
    ]
)
