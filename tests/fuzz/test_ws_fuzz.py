"""Hypothesis-generated `/ws` messages: ops from the ops table and made-up ones, fields of every
JSON type, text that is not JSON and binary frames. Whatever a sender sends, it gets a reply or
a deliberate close (never 1011, never a dropped socket), and the honest reader is unharmed."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from app.web.ws.ops import OPS
from tests.fixtures.server import ServerProcess
from tests.fuzz.conftest import HonestReader

UNACCEPTABLE = {1011, 1006}
"""A handler failure, and a socket dropped without a close frame."""

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["", "0", "-1", "1-1", "9" * 30, "public:fuzz", "room:fuzz"])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
channels = (
    st.sampled_from(
        ["public:fuzz", "room:fuzz", "user:nobody", "private:x", "public:", "public:a/b", "x" * 300]
    )
    | st.text(max_size=40)
    | values
)
ops = st.sampled_from(sorted(OPS)) | st.text(max_size=10) | values
messages = st.fixed_dictionaries(
    {"op": ops},
    optional={
        "channel": channels,
        "type": st.sampled_from(["chat", "reset", "error", "x" * 200])
        | st.text(max_size=20)
        | values,
        "data": values,
        "after": st.integers() | st.text(max_size=30) | values,
        "token": st.text(max_size=40) | values,
        "ref": values,
        "ephemeral": values,
        "ts": values,
    },
)
frames = (
    messages.map(json.dumps)
    | values.map(json.dumps)
    | st.text(max_size=60)
    | st.binary(max_size=60)
)


def credentials(token: str) -> st.SearchStrategy[tuple[str, str]]:
    """None, the guest's token, or a made-up, truncated or altered one, where a handshake reads it."""
    safe = st.text(
        st.characters(categories=["L", "N"], max_codepoint=127) | st.sampled_from("-._~"),
        min_size=1,
        max_size=60,
    )
    made_up = safe | st.sampled_from([token[:-3], token + "x", token.rsplit(".", 1)[0] + "."])
    return st.one_of(
        st.just(("none", "")),
        st.just(("subprotocol", token)),
        st.tuples(st.just("subprotocol"), made_up),
        st.tuples(st.just("ticket"), made_up),
    )


def probe(ws: Any) -> dict[str, Any] | None:
    """A ping op with a known ref: its pong shows the connection still serves its sender."""
    ws.send(orjson.dumps({"op": "ping", "ref": "probe"}).decode())
    while True:
        message = ws.recv(10)
        decoded = orjson.loads(message)
        if decoded.get("op") == "pong" and decoded.get("ref") == "probe":
            return decoded  # type: ignore[no-any-return]


def test_random_ws_messages_get_an_answer_or_a_deliberate_close(
    fuzz_server: ServerProcess, honest: HonestReader, guest_token: str
) -> None:
    examples = 0

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(batch=st.lists(frames, min_size=1, max_size=4), credential=credentials(guest_token))
    def run(batch: list[str | bytes], credential: tuple[str, str]) -> None:
        nonlocal examples
        examples += 1
        subprotocols = ["fourcast.v1"]
        url = fuzz_server.ws_url
        kind, value = credential
        if kind == "subprotocol":
            subprotocols.append(f"fourcast.bearer.{value}")
        elif kind == "ticket":
            url += f"?ticket={value}"
        try:
            ws = connect(url, subprotocols=subprotocols, open_timeout=10)  # type: ignore[arg-type]
        except InvalidStatus as exc:
            # A made-up credential is refused at the handshake, with a client error.
            assert kind != "none" and exc.response.status_code < 500, exc
            return
        with ws:
            try:
                assert orjson.loads(ws.recv(10))["op"] == "welcome"
                for frame in batch:
                    ws.send(frame)
                probe(ws)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else 1006
                assert code not in UNACCEPTABLE, (code, exc, batch)
        if examples % 25 == 0:
            honest.check()

    run()
    honest.check()
