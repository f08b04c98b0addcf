"""The access line's formatter (app/server/access_line.py): uvicorn's text, made once."""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import Iterator
from copy import copy, deepcopy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient
from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter

from app.main import create_app
from app.server.access_line import ACCESS_LOGGER, QuickAccessFormatter, install_quick_access_format
from app.settings import Settings

LINE = '%s - "%s %s HTTP/%s" %d'
DEFAULT_FORMAT = LOGGING_CONFIG["formatters"]["access"]["fmt"]


def record(
    client: str = "127.0.0.1:5555",
    method: str = "GET",
    path: str = "/events/room:a?after=3_1&wait=25",
    version: str = "1.1",
    status: int = 200,
    level: int = logging.INFO,
) -> logging.LogRecord:
    args = (client, method, path, version, status)
    return logging.LogRecord(ACCESS_LOGGER, level, __file__, 1, LINE, args, None)


def quick(**kwargs: Any) -> AccessFormatter:
    formatter = AccessFormatter(**kwargs)
    formatter.__class__ = QuickAccessFormatter
    return formatter


FORMATS = [
    DEFAULT_FORMAT,
    "%(asctime)s %(name)s %(levelname)s %(message)s | %(request_line)s %(status_code)s",
    "%(levelprefix)s %(client_addr)s %(status_code)s %(process)d %(extra_field)s",
]


@pytest.mark.parametrize("fmt", FORMATS)
@given(
    client=st.text(max_size=30),
    method=st.sampled_from(["GET", "POST", "DELETE", "OPTIONS"]),
    path=st.text(max_size=80),
    version=st.sampled_from(["1.0", "1.1", "2"]),
    status=st.one_of(st.integers(100, 599), st.integers(0, 99), st.integers(600, 10_000)),
    level=st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.CRITICAL]),
)
def test_the_line_is_the_one_uvicorn_would_write(
    fmt: str, client: str, method: str, path: str, version: str, status: int, level: int
) -> None:
    theirs = AccessFormatter(fmt=fmt, datefmt="%H:%M", use_colors=False)
    ours = quick(fmt=fmt, datefmt="%H:%M", use_colors=False)
    if "extra_field" in fmt:  # a format's defaults, as `logging.Formatter(defaults=...)` keeps them
        for formatter in (theirs, ours):
            formatter._style._defaults = {"extra_field": "x"}  # type: ignore[attr-defined]
    line = record(client, method, path, version, status, level)
    same_moment = copy(line)
    assert ours.format(line) == theirs.format(same_moment)
    assert line.args == (client, method, path, version, status)  # the record is not changed


def test_a_missing_field_is_reported_as_uvicorn_reports_it() -> None:
    fmt = "%(client_addr)s %(no_such_field)s"
    with pytest.raises(ValueError, match="no_such_field") as theirs:
        AccessFormatter(fmt=fmt, use_colors=False).format(record())
    with pytest.raises(ValueError, match="no_such_field") as ours:
        quick(fmt=fmt, use_colors=False).format(record())
    assert str(ours.value) == str(theirs.value)


def test_colours_switched_on_later_give_uvicorns_coloured_line() -> None:
    ours = quick(fmt=DEFAULT_FORMAT, use_colors=False)
    ours.use_colors = True
    coloured = ours.format(record())
    assert coloured == AccessFormatter(fmt=DEFAULT_FORMAT, use_colors=True).format(record())
    assert "\x1b[" in coloured


@pytest.fixture
def uvicorn_logging() -> Iterator[logging.Logger]:
    """The access logger as plain `uvicorn` configures it (output not a terminal); every
    logger that configuration touches is put back afterwards."""
    config = deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"]["use_colors"] = False
    touched = [logging.getLogger(name) for name in config["loggers"]]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in touched]
    logging.config.dictConfig(config)
    yield logging.getLogger(ACCESS_LOGGER)
    for lg, handlers, level, propagate, disabled in saved:
        lg.handlers[:] = handlers
        lg.level, lg.propagate, lg.disabled = level, propagate, disabled


def test_uvicorns_default_access_formatter_is_made_quick_in_place(
    uvicorn_logging: logging.Logger,
) -> None:
    (handler,) = [h for h in uvicorn_logging.handlers if type(h) is logging.StreamHandler]
    before = handler.formatter
    assert type(before) is AccessFormatter
    install_quick_access_format()
    assert handler.formatter is before  # the same instance: its options are kept
    assert type(before) is QuickAccessFormatter


@pytest.mark.parametrize(
    "formatter",
    [
        AccessFormatter(fmt=DEFAULT_FORMAT, use_colors=True),
        AccessFormatter(fmt="{levelprefix} {client_addr}", style="{", use_colors=False),
        type("Custom", (AccessFormatter,), {})(fmt=DEFAULT_FORMAT, use_colors=False),
        logging.Formatter("%(message)s"),
    ],
    ids=["coloured", "brace-style", "a-subclass", "not-uvicorns"],
)
def test_any_other_access_formatter_is_left_as_configured(
    uvicorn_logging: logging.Logger, formatter: logging.Formatter
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    uvicorn_logging.handlers = [handler]
    kind = type(formatter)
    install_quick_access_format()
    assert handler.formatter is formatter
    assert type(formatter) is kind


def test_the_apps_start_up_makes_the_access_formatter_quick(
    uvicorn_logging: logging.Logger, tmp_path: Path
) -> None:
    (handler,) = [h for h in uvicorn_logging.handlers if type(h) is logging.StreamHandler]
    with TestClient(create_app(Settings(data_dir=tmp_path, secret_key="s" * 48))):
        assert type(handler.formatter) is QuickAccessFormatter
