"""uvicorn's access line, formatted without copying each record twice.

uvicorn's `AccessFormatter` copies every record twice (once for the request line, once for the
level prefix) and looks the status phrase up each time: about half of what writing a poll's
access line costs, and plain `uvicorn app.main:app` writes one per poll. `QuickAccessFormatter`
makes the same text from one dict of values. It replaces only a formatter that is exactly
uvicorn's, in `%` style and without colours (output not to a terminal); any other configuration
is left as the operator set it.
"""

from __future__ import annotations

import http
import logging
from typing import Any

from uvicorn.logging import AccessFormatter

ACCESS_LOGGER = "uvicorn.access"


def _status_text(status: int) -> str:
    """What `AccessFormatter.get_status_code` gives without colours."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"{status} {phrase}"


STATUS_TEXT = {status: _status_text(status) for status in range(100, 600)}
"""Every three-digit status a response can carry, looked up rather than made per line."""


class QuickAccessFormatter(AccessFormatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        if self.use_colors or type(self._style) is not logging.PercentStyle:
            return super().formatMessage(record)  # as configured after install: uvicorn's own
        args: Any = record.args
        client_addr, method, full_path, http_version, status_code = args
        status = int(status_code)
        status_text = STATUS_TEXT.get(status)
        if status_text is None:
            status_text = _status_text(status)
        defaults = self._style._defaults  # type: ignore[attr-defined]
        values: dict[str, Any] = defaults | record.__dict__ if defaults else dict(record.__dict__)
        levelname = record.levelname
        values["levelprefix"] = levelname + ":" + " " * (8 - len(levelname))
        values["client_addr"] = client_addr
        values["request_line"] = f"{method} {full_path} HTTP/{http_version}"
        values["status_code"] = status_text
        try:
            line: str = self._style._fmt % values
            return line
        except KeyError as exc:  # as `PercentStyle.format` reports it
            raise ValueError(f"Formatting field not found in record: {exc}") from exc


def install_quick_access_format() -> None:
    """On the access logger's handlers whose formatter is exactly uvicorn's, without colours
    and in `%` style (uvicorn's default when its output is not a terminal)."""
    for handler in logging.getLogger(ACCESS_LOGGER).handlers:
        current = handler.formatter
        if (
            type(current) is AccessFormatter
            and not current.use_colors
            and type(current._style) is logging.PercentStyle
        ):
            current.__class__ = QuickAccessFormatter  # the same instance: format, time, options
