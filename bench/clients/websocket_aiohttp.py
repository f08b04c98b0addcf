"""The aiohttp WebSocket subscriber (`--ws-client aiohttp`), kept to compare against picows."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from orjson import loads

from bench.clients.target import BENCH_TYPE
from bench.clients.websocket import WSClient
from bench.track import Sub


class AiohttpSub(WSClient):
    """aiohttp WebSocket subscriber: one task per connection (kept to compare against picows)."""

    session: Any = None

    def __init__(self, sub: Sub, first: bytes) -> None:
        self.sub = sub
        self.first = first
        self.ready = asyncio.get_running_loop().create_future()
        self.closed = False
        self.closing = False
        self.task: asyncio.Task[None] | None = None
        self.ws: Any = None

    @classmethod
    def get_session(cls) -> Any:
        import aiohttp

        if cls.session is None:
            cls.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=True)
            )
        return cls.session

    async def connect(
        self, url: str, protocols: list[str], headers: dict[str, str] | None = None
    ) -> AiohttpSub:
        self.ws = await self.get_session().ws_connect(
            url,
            protocols=protocols,
            autoping=True,
            heartbeat=None,
            max_msg_size=0,
            headers=headers,
        )
        await self.ws.send_str(self.first.decode())
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        import aiohttp

        sub = self.sub
        try:
            async for m in self.ws:
                if m.type != aiohttp.WSMsgType.TEXT:
                    continue
                msg = loads(m.data)
                op = msg["op"]
                if op == "event":
                    d = msg["data"]
                    if msg["type"] == BENCH_TYPE:
                        sub.event(d["seq"], d["sent"], time.time() * 1000)
                elif op in ("ack", "subscribed") and not self.ready.done():
                    self.ready.set_result(msg)
                elif op == "error" and not self.ready.done():
                    self.ready.set_exception(RuntimeError(f"server error: {msg}"))
                elif op == "reset":
                    sub.tracker.resets += 1
        finally:
            self.closed = True
            if not self.closing and sub.alive:
                sub.alive = False
                sub.tracker.disconnects += 1
            if not self.ready.done():
                self.ready.set_exception(ConnectionError("closed"))

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 2)
        if self.task is not None:
            self.task.cancel()
