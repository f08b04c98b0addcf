"""The quick lane reads a poll's query and session cookie with short cuts for the usual shapes;
each must read exactly what Starlette reads for the same request, whatever the client sends."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams
from starlette.requests import cookie_parser

from app.web.deps import SESSION_COOKIE
from app.web.polllane import _session_cookie, query_params

# Pieces that exercise the parsers' edges: separators, quotes, escapes, spaces, our cookie name.
PIECES = st.sampled_from(
    [SESSION_COOKIE, "other", "=", ";", "&", '"', "\\", " ", "%41", "+", "a", "b1", "é", ""]
)
TEXT = st.lists(PIECES, max_size=12).map("".join)


@settings(max_examples=500)
@given(TEXT)
def test_the_session_cookie_is_read_as_starlette_reads_it(header: str) -> None:
    sent = header.encode("latin-1", "replace").decode("latin-1")
    assert _session_cookie(sent) == cookie_parser(sent).get(SESSION_COOKIE)


def test_a_lone_session_cookie_takes_the_short_cut_and_the_same_value() -> None:
    assert _session_cookie(f" {SESSION_COOKIE} = tok.en ") == "tok.en"
    assert _session_cookie(f"{SESSION_COOKIE}=a; x=1") == "a"
    assert _session_cookie('other="x"') is None


@settings(max_examples=500)
@given(TEXT)
def test_the_query_is_read_as_starlette_reads_it(query: str) -> None:
    raw = query.encode("latin-1", "replace")
    assert query_params(raw) == dict(QueryParams(raw.decode("latin-1")).items())
