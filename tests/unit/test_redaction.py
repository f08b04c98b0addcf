"""The access log's redaction filter (app/observability/logging.py), on records as uvicorn and the
quick lane make them."""

from __future__ import annotations

import logging

import pytest

from app.observability.logging import RedactSecrets

LINE = '%s - "%s %s HTTP/%s" %d'


def record(path: str, msg: str = LINE) -> logging.LogRecord:
    args = ("127.0.0.1:5555", "GET", path, "1.1", 200)
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, msg, args, None)


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/e?ticket=abc.def&after=3", "/e?ticket=[redacted]&after=3"),
        ("/e?after=3&TOKEN=xyz", "/e?after=3&TOKEN=[redacted]"),
        ("/e?access_token=x&api_key=y", "/e?access_token=[redacted]&api_key=[redacted]"),
    ],
)
def test_a_secret_in_a_query_is_redacted(path: str, shown: str) -> None:
    line = record(path)
    assert RedactSecrets().filter(line) is True
    assert line.getMessage() == f'127.0.0.1:5555 - "GET {shown} HTTP/1.1" 200'


def test_a_query_without_a_secret_keeps_its_arguments_as_they_were() -> None:
    line = record("/e?after=3_1&wait=25&tokens_left=2")
    args = line.args
    RedactSecrets().filter(line)
    assert line.args is args


def test_a_secret_in_the_message_itself_is_redacted() -> None:
    line = logging.LogRecord("x", logging.INFO, __file__, 1, "GET /e?ticket=abc", None, None)
    RedactSecrets().filter(line)
    assert line.getMessage() == "GET /e?ticket=[redacted]"
