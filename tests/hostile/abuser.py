"""One hostile guest, run as its own process so its loops never slow the honest readers' clients.

    python -m tests.hostile.abuser KIND BASE_URL ROOM API_KEY

Prints `ready` once the abuse is in full swing (the server has pushed back at least once), keeps
going until a line arrives on stdin, then prints one JSON line: what the server answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import websockets

FORGED = ("reset", "error", "welcome", "ack", "pong", "message", "Reset")
BIG_EVENTS = 100
BIG_BYTES = 60_000
UNREAD_POLLERS = 8
UNREAD_SOCKETS = 8


class Outcome:
    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.closes: Counter[int] = Counter()
        self.retry_after: list[float] = []
        self.extra: dict[str, Any] = {}
        self.ready = asyncio.Event()

    def http(self, response: httpx.Response) -> None:
        self.statuses[str(response.status_code)] += 1
        if response.status_code >= 400:
            self.codes[response.json()["error"]["code"]] += 1
        if response.status_code == 429 and len(self.retry_after) < 20:
            self.retry_after.append(float(response.headers["retry-after"]))

    def op(self, message: dict[str, Any]) -> None:
        if message.get("op") == "error":
            self.codes[message["code"]] += 1
            if "retry_after" in message and len(self.retry_after) < 20:
                self.retry_after.append(float(message["retry_after"]))

    def json(self) -> bytes:
        return orjson.dumps(
            {
                "statuses": self.statuses,
                "codes": self.codes,
                "closes": self.closes,
                "retry_after": self.retry_after,
                **self.extra,
            },
            option=orjson.OPT_NON_STR_KEYS,
        )


async def guest(client: httpx.AsyncClient, name: str = "mallory") -> str:
    response = await client.post("/api/session", json={"name": name})
    response.raise_for_status()
    return str(response.json()["token"])


async def hammer_ws(
    base: str, token: str, out: Outcome, make: Callable[[int], dict[str, Any]], stop: asyncio.Event
) -> None:
    """Send ops as fast as the socket takes them, reading every answer; reconnect after a close
    (persistent abuse) until told to stop."""
    url = base.replace("http://", "ws://") + "/ws"
    while not stop.is_set():
        try:
            async with websockets.connect(
                url,
                subprotocols=["fourcast.v1", f"fourcast.bearer.{token}"],  # type: ignore[list-item]
            ) as ws:

                async def read() -> None:
                    with contextlib.suppress(websockets.ConnectionClosed):
                        async for raw in ws:
                            out.op(orjson.loads(raw))

                reader = asyncio.create_task(read())
                n = 0
                while not stop.is_set() and not reader.done():
                    n += 1
                    await ws.send(orjson.dumps(make(n)).decode())
                    if n % 50 == 0:
                        await asyncio.sleep(0)
                await asyncio.wait({reader}, timeout=5)
        except websockets.ConnectionClosed as exc:
            out.closes[exc.rcvd.code if exc.rcvd else 0] += 1
        else:
            if ws.close_code is not None:
                out.closes[ws.close_code] += 1
        if out.closes[1008] and out.codes:
            out.ready.set()
        # Back for more, as a persistent abuser would; paced, so that this process's own CPU
        # (on the same machine as the server) is not what the honest readers measure.
        await asyncio.sleep(0.2)


async def churn(base: str, room: str, key: str, out: Outcome, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        token = await guest(client)

    def op(n: int) -> dict[str, Any]:
        return {"op": "subscribe" if n % 2 else "unsubscribe", "channel": f"room:{room}"}

    await hammer_ws(base, token, out, op, stop)


async def flood(base: str, room: str, key: str, out: Outcome, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        token = await guest(client)
        headers = {"Authorization": f"Bearer {token}"}

        async def rest() -> None:
            while not stop.is_set():
                response = await client.post(
                    f"/api/channels/room:{room}/events",
                    json={"type": "chat.message", "data": {"text": "spam"}},
                    headers=headers,
                )
                out.http(response)

        def op(n: int) -> dict[str, Any]:
            data = {"text": f"spam {n}"}
            return {
                "op": "publish",
                "channel": f"room:{room}",
                "type": "chat.message",
                "data": data,
            }

        await asyncio.gather(rest(), rest(), hammer_ws(base, token, out, op, stop))


async def forged(base: str, room: str, key: str, out: Outcome, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        token = await guest(client)
        for who in ({"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {key}"}):
            for word in FORGED:
                body = {"type": word, "data": {"channel": f"room:{room}"}}
                out.http(
                    await client.post(f"/api/channels/room:{room}/events", json=body, headers=who)
                )
        out.ready.set()

        def op(n: int) -> dict[str, Any]:
            word = FORGED[n % len(FORGED)]
            return {"op": "publish", "channel": f"room:{room}", "type": word, "data": {}}

        await hammer_ws(base, token, out, op, stop)


async def _loop_http(
    out: Outcome, stop: asyncio.Event, call: Callable[[int], Awaitable[httpx.Response]]
) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        response = await call(n)
        out.http(response)
        if response.status_code == 429:
            out.ready.set()


async def signups(base: str, room: str, key: str, out: Outcome, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        await _loop_http(
            out, stop, lambda n: client.post("/api/session", json={"name": f"sock{n}"})
        )


async def typing(base: str, room: str, key: str, out: Outcome, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        client.headers["Authorization"] = f"Bearer {await guest(client)}"
        await _loop_http(
            out,
            stop,
            lambda n: client.post(
                f"/api/channels/room:{secrets.token_hex(8)}/events",
                json={"type": "typing", "data": {}},
            ),
        )


async def rooms(base: str, room: str, key: str, out: Outcome, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        client.headers["Authorization"] = f"Bearer {await guest(client)}"
        await _loop_http(
            out, stop, lambda n: client.post("/api/rooms", json={"name": secrets.token_hex(8)})
        )


async def tickets(base: str, room: str, key: str, out: Outcome, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        client.headers["Authorization"] = f"Bearer {await guest(client)}"
        await _loop_http(out, stop, lambda n: client.post("/api/tickets"))


async def huge_polls(base: str, room: str, key: str, out: Outcome, stop: asyncio.Event) -> None:
    """Big events, then read-all polls whose answers are never read, from several guests."""
    big = f"room:{room}-big"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        service = {"Authorization": f"Bearer {key}"}
        for n in range(BIG_EVENTS):
            body = {"type": "blob", "data": {"n": n, "x": "x" * BIG_BYTES}}
            response = await client.post(f"/api/channels/{big}/events", json=body, headers=service)
            response.raise_for_status()
        tokens = [await guest(client, f"hoarder{n}") for n in range(UNREAD_POLLERS)]
    host, port = base.removeprefix("http://").split(":")
    held: list[asyncio.StreamWriter] = []
    for token in tokens:
        for _ in range(UNREAD_SOCKETS):
            _, writer = await asyncio.open_connection(host, int(port), limit=1024)
            writer.write(
                f"GET /api/channels/{big}/events?after=0&limit=1000 HTTP/1.1\r\n"
                f"Host: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
            )
            held.append(writer)  # never read
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        client.headers["Authorization"] = f"Bearer {tokens[0]}"

        async def read_all(n: int) -> httpx.Response:
            response = await client.get(f"/api/channels/{big}/events?after=0&limit=1000")
            if response.status_code == 200:
                out.extra["truncated"] = response.json().get("truncated", False)
                out.extra["page_bytes"] = len(response.content)
            return response

        await _loop_http(out, stop, read_all)
    out.extra["held"] = len(held)
    for writer in held:
        writer.close()


SLOW_SOCKETS = 300
IDLE_SOCKETS = 1500
TRICKLE_EVERY = 0.5
"""Seconds between the bytes of a slowloris head (the abuse's pace, not a synchronisation)."""


async def _hold_socket(base: str, out: Outcome, stop: asyncio.Event, trickle: bool) -> None:
    """Keep one socket open on the server without ever completing a request head: trickle one
    byte of a head at a time (slowloris), or send nothing at all; reopen it when the server
    closes it, as a persistent attacker would."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            out.extra["refused"] = out.extra.get("refused", 0) + 1
            await asyncio.sleep(0.2)
            continue
        closed = asyncio.ensure_future(reader.read(65536))
        try:
            if trickle:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            while not stop.is_set() and not closed.done():
                await asyncio.wait({closed}, timeout=TRICKLE_EVERY)
                if trickle and not closed.done():
                    writer.write(b"a")
            if closed.done():
                # The server ended it (EOF, or an answer such as 408/503 and then EOF).
                out.closes[0] += 1
                out.ready.set()
        except OSError:
            out.closes[0] += 1
            out.ready.set()
        finally:
            closed.cancel()
            writer.close()


async def _hold_sockets(
    base: str, out: Outcome, stop: asyncio.Event, count: int, trickle: bool
) -> None:
    await asyncio.gather(*(_hold_socket(base, out, stop, trickle) for _ in range(count)))


async def slowloris(base: str, room: str, key: str, out: Outcome, stop: asyncio.Event) -> None:
    await _hold_sockets(base, out, stop, SLOW_SOCKETS, trickle=True)


async def idle_sockets(base: str, room: str, key: str, out: Outcome, stop: asyncio.Event) -> None:
    await _hold_sockets(base, out, stop, IDLE_SOCKETS, trickle=False)


KINDS = {
    "churn": churn,
    "flood": flood,
    "forged": forged,
    "signups": signups,
    "typing": typing,
    "rooms": rooms,
    "tickets": tickets,
    "huge_polls": huge_polls,
    "slowloris": slowloris,
    "idle_sockets": idle_sockets,
}


async def main(kind: str, base: str, room: str, key: str) -> None:
    out = Outcome()
    stop = asyncio.Event()
    task = asyncio.create_task(KINDS[kind](base, room, key, out, stop))

    async def announce() -> None:
        await out.ready.wait()
        print("ready", flush=True)

    announcer = asyncio.create_task(announce())
    await asyncio.wait(
        {task, asyncio.ensure_future(asyncio.to_thread(sys.stdin.readline))},
        return_when=asyncio.FIRST_COMPLETED,
    )
    stop.set()
    await asyncio.wait({task}, timeout=10)
    announcer.cancel()
    if task.done() and not task.cancelled() and task.exception() is not None:
        out.extra["failed"] = repr(task.exception())
    sys.stdout.write(out.json().decode() + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
