"""fourcast.client without a server: backoff math with an injected random source, the SSE
parser's tolerance, error mapping, and that importing the client loads nothing of the server."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from app.client import (
    AuthError,
    Backoff,
    Client,
    Event,
    ForbiddenError,
    FourcastError,
    TransportDisabled,
)
from app.client.errors import UnavailableError, error_from_response
from app.client.transports import normalize
from app.client.transports.base import Dropped, ResetSignal, refused
from app.client.transports.sse import _dispatch, sse_lines
from app.client.transports.ws import ws_url
from tests.fixtures.server import ROOT


def test_full_jitter_is_uniform_below_a_doubling_capped_ceiling() -> None:
    draws = iter([1.0, 0.5, 0.25, 1.0, 1.0, 1.0, 0.0])
    backoff = Backoff(base=0.5, cap=4.0, rng=lambda: next(draws))
    delays = [backoff.next() for _ in range(7)]
    #           1.0*0.5  0.5*1  0.25*2  1.0*4  1.0*4 (cap) 1.0*4  0.0*4
    assert delays == [0.5, 0.5, 0.5, 4.0, 4.0, 4.0, 0.0]
    backoff.reset()
    assert backoff.ceiling() == 0.5


def test_a_retry_after_is_a_floor_and_the_exponent_stops_growing() -> None:
    backoff = Backoff(base=1.0, cap=30.0, rng=lambda: 0.0)
    assert backoff.next(minimum=7.0) == 7.0
    for _ in range(1000):
        backoff.next()
    assert backoff.ceiling() == 30.0  # no overflow after many attempts
    with pytest.raises(ValueError):
        Backoff(base=0, cap=1)


def frame(**fields: str | list[str]) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [v] for k, v in fields.items()}


def test_sse_event_type_comes_from_the_json_not_the_event_line() -> None:
    data = '{"id":"7","channel":"public:x","type":"reset","ts":1,"from":"service:a","data":{}}'
    item = _dispatch(frame(id="7", event="message", data=data))
    assert isinstance(item, Event)
    assert (item.id, item.type, item.channel) == ("7", "reset", "public:x")
    # A published event may even be called "reset": only the `event:` control word resets.
    assert isinstance(_dispatch(frame(event="reset", data='{"channel":"public:x"}')), ResetSignal)


def test_sse_error_control_ends_the_stream_and_retry_lines_are_ignored() -> None:
    with pytest.raises(Dropped):
        _dispatch(frame(event="error", data='{"error":{"code":"unavailable"}}'))
    assert _dispatch(frame(retry="2000")) is None
    multi = _dispatch(frame(data=['{"id":null,"channel":"room:a",', '"type":"typing","data":{}}']))
    assert isinstance(multi, Event) and multi.id is None


def test_sse_data_that_is_no_event_drops_the_stream_rather_than_ending_it() -> None:
    """A proxy's page streamed as `data:` lines: dropped (the stream resumes from the last event
    read), not a JSON error out of the subscription."""
    with pytest.raises(Dropped):
        _dispatch(frame(data="<html>gateway timeout</html>"))


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def lines(*parts: bytes) -> list[str]:
    return [line async for line in sse_lines(chunks(*parts))]


async def test_lines_end_at_cr_lf_lf_or_cr_wherever_the_chunks_are_cut() -> None:
    stream = "data: a\u2028b\r\n\r\nid: 1\rdata: \u00e9\n\nunfinished".encode()
    expected = ["data: a\u2028b", "", "id: 1", "data: \u00e9", ""]
    assert await lines(stream) == expected
    for cut in range(1, len(stream)):  # a CR LF, or a UTF-8 sequence, split in two
        assert await lines(stream[:cut], stream[cut:]) == expected, cut
    assert await lines(b"a\r", b"\n", b"\r", b"\nb\n") == ["a", "", "b"]


def test_error_mapping_by_status_and_code() -> None:
    body = b'{"error":{"code":"invalid_token","message":"bad key"}}'
    auth = error_from_response(401, body, {})
    assert isinstance(auth, AuthError) and not auth.retryable and auth.message == "bad key"
    disabled = error_from_response(403, b'{"error":{"code":"transport_disabled"}}', {})
    assert isinstance(disabled, TransportDisabled) and isinstance(disabled, ForbiddenError)
    busy = error_from_response(503, b"not json", {"retry-after": "3"})
    assert isinstance(busy, UnavailableError) and busy.retryable and busy.retry_after == 3.0
    limited = error_from_response(429, b"", {})
    assert type(limited) is FourcastError and limited.retryable
    assert not error_from_response(422, b"", {}).retryable


@pytest.mark.parametrize(
    ("status", "retry_after", "busy"),
    [(429, None, True), (429, 2.0, True), (503, 2.0, True), (503, None, False), (502, 2.0, False)],
)
def test_busy_is_a_429_or_a_503_with_retry_after(
    status: int, retry_after: float | None, busy: bool
) -> None:
    """The browser client's saysLater rule: a 429 is always "later" (too many requests), a 503
    only with Retry-After; anything else may be a transport that cannot work here."""
    error = FourcastError("x", "refused", status=status, retry_after=retry_after)
    drop = refused(error)
    assert drop.busy is busy
    assert drop.min_delay == (retry_after or 0)


def test_names_and_urls() -> None:
    assert normalize("ws") == "websocket"
    with pytest.raises(ValueError):
        normalize("pigeon")
    assert ws_url("http://h:1/") == "ws://h:1/ws"
    assert ws_url("https://h") == "wss://h/ws"


@pytest.mark.parametrize(
    "url", ["localhost:8000", "127.0.0.1:8000", "http://[::1", "ftp://h", "http://", "http://h?x"]
)
async def test_a_server_url_that_can_never_be_reached_is_refused_at_once(url: str) -> None:
    """Not retried as if the server were away: publish would retry it 30 s, tail for ever."""
    with pytest.raises(ValueError, match="invalid server URL"):
        Client(url)


async def test_server_urls_are_normalised_and_cursors_checked() -> None:
    async with Client("HTTPS://Example.org:8443/") as client:
        assert client.base_url == "https://example.org:8443"
        assert ws_url(client.base_url) == "wss://example.org:8443/ws"
        # A cursor no server issues, which SSE could not even send as a header.
        for after in ("é", "1\n2", "", "1 2"):
            with pytest.raises(ValueError, match="not a cursor"):
                client.subscribe("public:x", after=after)
        assert client.subscribe("public:x", after="41_1700000000000").cursor == "41_1700000000000"


@pytest.mark.parametrize("credential", [{"api_key": "clé-0123456789abcdef"}, {"token": "a\nb"}])
async def test_a_credential_no_header_can_carry_is_refused_at_once(
    credential: dict[str, str],
) -> None:
    """Not a UnicodeEncodeError at the first request, nor a newline retried as an outage."""
    with pytest.raises(ValueError, match="cannot be sent") as refused:
        Client("http://127.0.0.1:9", **credential)
    assert "clé" not in str(refused.value) and "a\nb" not in str(refused.value)  # a secret


@pytest.mark.parametrize("key", ["commande-é", "order\n1", " padded ", ""])
async def test_an_idempotency_key_no_header_can_carry_is_refused_before_sending(key: str) -> None:
    async with Client("http://127.0.0.1:9", publish_retry_for=0) as client:
        with pytest.raises(ValueError, match="idempotency_key"):
            await client.publish("public:x", "t", {}, idempotency_key=key)
        assert client.stats["publish_attempts"] == 0


@pytest.mark.parametrize(
    "option",
    [
        {"poll_interval": 0},  # a tight loop of polls against the server
        {"poll_interval": math.nan},  # asyncio.sleep(nan) never returns
        {"poll_interval": math.inf},
        {"long_poll_wait": math.nan},
        {"connect_timeout": 0},
        {"backoff_cap": math.nan},  # every backoff wait nan: never reconnects
        {"backoff_cap": math.inf},
        {"publish_retry_for": math.nan},  # a deadline that never passes
        {"publish_retry_for": -1},
    ],
)
def test_durations_that_cannot_work_are_refused_at_once(option: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=f"{next(iter(option))}|backoff"):
        Client("http://127.0.0.1:9", **option)


def test_the_client_imports_nothing_of_the_server() -> None:
    heavy = ("fastapi", "starlette", "sqlalchemy", "uvicorn", "redis", "pydantic", "orjson")
    code = (
        "import sys, app.client; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
