"""The bare server: uvloop answering every request with one fixed body, parsing nothing but where a
request's head ends. No Python server can serve a request for less on this machine; `python -m
bench requestcost` measures it beside fourcast and Nchan (bench/requestcost.py)."""

import asyncio
import sys

import uvloop

BODY = b'{"events":[{"id":"1","type":"bench","data":"hello"}],"next":"1","reset":false}'
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


class Bare(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        while b"\r\n\r\n" in self.pending:
            _, _, self.pending = self.pending.partition(b"\r\n\r\n")
            self.transport.write(ANSWER)


async def serve(port: int) -> None:
    await asyncio.get_running_loop().create_server(Bare, "127.0.0.1", port, backlog=4096)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
