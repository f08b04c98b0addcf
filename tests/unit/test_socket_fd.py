"""The fan-out's writes straight to a connection's file descriptor (app/server/socket_fd.py,
app/bus/fanout.py), on real loopback sockets under uvloop and asyncio's own loop: a write the
socket takes only in part hands the rest to the transport, later events go behind it through the
transport until it has written it all, the gate shuts at the transport's high-water mark as
before, and the reader gets every byte in order. A TLS transport is never written to past its
encryption."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from app.bus.events import Event
from app.bus.fanout import fan_out
from app.bus.hub import Subscription
from app.bus.sink import Sink
from app.server.socket_fd import NO_FD, fan_out_fd

CHANNEL = "public:fd"
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}
PAD = b"x" * 32_000


def run(loop_name: str, test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        runner.run(asyncio.wait_for(test(), 60))


def event(seq: int, pad: bytes = PAD) -> Event:
    return Event(CHANNEL, "t", b'{"n":%d,"pad":"%b"}' % (seq, pad), 1.0 * seq, "service:x", seq)


def encode(event: Event) -> bytes:
    return b"<" + event.json + b">"


class Counter:
    def wrote(self, count: int, newest_ts_ms: float) -> None:
        pass


class Connection(asyncio.Protocol):
    """The server's side, keeping its reader's gate as fourcast's protocols do: shut while the
    transport has paused it."""

    def __init__(self, sink: Sink, made: asyncio.Future[Connection]) -> None:
        self.sink = sink
        self.made = made
        self.paused = False
        self.resumed = asyncio.Event()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.made.set_result(self)

    def pause_writing(self) -> None:
        self.paused = True
        self.sink.set_gate(False)

    def resume_writing(self) -> None:
        self.paused = False
        self.resumed.set()
        self.sink.set_gate(True)


def reader_sink() -> tuple[Sink, Subscription]:
    sink = Sink(100, 1 << 30)

    def direct(items: Any) -> bool:
        return False

    sink.write_on_demand(direct, lambda: None)
    return sink, Subscription(CHANNEL, sink, catching_up=False)


@contextlib.asynccontextmanager
async def served(
    sink: Sink, context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[asyncio.Future[Connection], int]]:
    """A server for one connection, closed (with it) however the test ends."""
    loop = asyncio.get_running_loop()
    made: asyncio.Future[Connection] = loop.create_future()
    server = await loop.create_server(lambda: Connection(sink, made), "127.0.0.1", 0, ssl=context)
    try:
        yield made, server.sockets[0].getsockname()[1]
    finally:
        if made.done():
            made.result().transport.abort()
        server.close()


async def given_the_fan_out(made: asyncio.Future[Connection]) -> Any:
    """What the servers' `fan_out` extension does: the descriptor, then the gate as it is."""
    connection = await made
    transport = connection.transport
    connection.sink.fd = fan_out_fd(transport)
    connection.sink.fan_out_through(encode, transport, Counter())
    connection.sink.set_gate(not connection.paused)
    return transport


@pytest.mark.parametrize("loop_name", LOOPS)
def test_events_go_behind_what_the_transport_holds_and_arrive_in_order(
    loop_name: str,
) -> None:
    async def test() -> None:
        loop = asyncio.get_running_loop()
        sink, sub = reader_sink()
        with socket.socket() as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills quickly
            client.setblocking(False)
            async with served(sink) as (made, port):
                await loop.sock_connect(client, ("127.0.0.1", port))
                await fill_then_drain(client, made, sink, sub)

    run(loop_name, test)


def read_now(client: socket.socket) -> bytes:
    """All the client's socket holds, read without letting the event loop run."""
    got = bytearray()
    while True:
        try:
            chunk = client.recv(1 << 16)
        except BlockingIOError:
            return bytes(got)
        if not chunk:
            return bytes(got)
        got += chunk


def is_open(sink: Sink) -> bool:
    """The gate as the fan-out reads it (a call: the type checker would keep an attribute
    narrowed through the fan-outs that change it)."""
    return sink.writable


async def fill_then_drain(
    client: socket.socket, made: asyncio.Future[Connection], sink: Sink, sub: Subscription
) -> None:
    """Events fanned out to a client that reads nothing, until the transport pauses; then all
    of it read."""
    transport = await given_the_fan_out(made)
    assert sink.fd == transport.get_extra_info("socket").fileno()
    assert is_open(sink)

    written: list[bytes] = []
    offered: list[Event] = []

    def offer(_: Subscription, batch: list[Event]) -> None:
        offered.append(batch[0])

    seq = 0
    behind = 0  # events fanned out while the transport held bytes
    received = bytearray()
    while is_open(sink) and seq < 2_000:  # the client reads nothing meanwhile...
        held = transport.get_write_buffer_size()
        if held and not behind:
            # ...but once, here: the socket has room again, and the transport still holds the
            # rest of a write (it writes only when the loop runs). The next event must not
            # overtake it.
            received += read_now(client)
            assert received  # it had filled
        seq += 1
        fan_out([sub], [event(seq)], offer)
        assert sub.last_seq == seq and not offered  # written, in full or in part
        written.append(encode(event(seq)))
        behind += held > 0
    assert not is_open(sink), "the socket never filled"
    # A write went in part, and the events after it went behind its rest, until the transport
    # reached its high-water mark and paused its protocol.
    assert behind > 0 and transport.get_write_buffer_size() > 0
    fan_out([sub], [event(seq + 1)], offer)
    assert [e.seq for e in offered] == [seq + 1]  # shut: queued, not written

    expected = b"".join(written)
    while len(received) < len(expected):
        received += await asyncio.wait_for(
            asyncio.get_running_loop().sock_recv(client, 1 << 16), 20
        )
    assert received == expected  # every byte, in order, none twice
    await asyncio.wait_for((await made).resumed.wait(), 20)  # drained: open again
    assert sink.writable and transport.get_write_buffer_size() == 0


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    where: Path = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"),
            *("ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_tls_connection_is_written_through_its_transport(
    loop_name: str, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    async def test() -> None:
        sink, sub = reader_sink()
        async with served(sink, tls[0]) as (made, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls[1])
            try:
                await through_tls(reader, made, sink, sub)
            finally:
                writer.transport.abort()

    run(loop_name, test)


async def through_tls(
    reader: asyncio.StreamReader, made: asyncio.Future[Connection], sink: Sink, sub: Subscription
) -> None:
    await given_the_fan_out(made)
    assert sink.fd == NO_FD
    offered: list[Event] = []
    for seq in (1, 2, 3):  # small: a TLS transport's buffer pauses its protocol sooner
        fan_out([sub], [event(seq, b"")], lambda _, batch: offered.extend(batch))
    assert offered == [] and sub.last_seq == 3
    expected = b"".join(encode(event(seq, b"")) for seq in (1, 2, 3))
    assert await reader.readexactly(len(expected)) == expected  # decrypted, in order


class NotATransport:
    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        pass


@pytest.mark.parametrize("loop_name", LOOPS)
def test_only_an_open_plain_socket_transport_gets_a_descriptor(loop_name: str) -> None:
    async def test() -> None:
        sink, _ = reader_sink()
        async with served(sink) as (made, port):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            transport = (await made).transport
            assert fan_out_fd(NotATransport()) == NO_FD
            transport.close()
            assert fan_out_fd(transport) == NO_FD  # closing
            writer.transport.abort()

    run(loop_name, test)
