"""Logging set-up, with credentials redacted from access-log lines."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

PACKAGE = __name__.split(".")[0]  # `app` in the checkout, `fourcast` when installed

PARAM = re.compile(r"([^?&;\s\"=]+)=([^&\s\"]*)")
SECRET_NAMES = ("ticket", "token", "access_token", "api_key")
"""Parameter names whose values are credentials, compared once percent-decoded (the server
reads `%74icket` as `ticket`)."""


def _redact_param(match: re.Match[str]) -> str:
    name = match.group(1)
    decoded = unquote_plus(name).lower() if "%" in name or "+" in name else name.lower()
    if decoded.endswith(SECRET_NAMES):
        return f"{name}=[redacted]"
    return match.group(0)


def redact(text: str) -> str:
    return PARAM.sub(_redact_param, text)


class RedactSecrets(logging.Filter):
    """A `?ticket=` or token in a URL must never reach a log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Runs for every access-log line: only text with an `=` in it can hold a secret.
        # A query string always has an `=`: the tuple is rebuilt only when a secret is found.
        args = record.args
        if isinstance(args, tuple):
            for arg in args:
                if isinstance(arg, str) and "=" in arg and redact(arg) != arg:
                    record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
                    break
        if isinstance(record.msg, str) and "=" in record.msg:
            record.msg = redact(record.msg)
        return True


def install_redaction() -> None:
    """On uvicorn's loggers, and on the handlers that print everything else (a logger's own
    filters do not see records from its children, such as `app.bus.bus`)."""
    targets: list[logging.Filterer] = [
        logging.getLogger("uvicorn.access"),
        logging.getLogger("uvicorn.error"),
        *logging.getLogger().handlers,
    ]
    if logging.lastResort is not None:
        targets.append(logging.lastResort)
    for target in targets:
        if not any(isinstance(f, RedactSecrets) for f in target.filters):
            target.addFilter(RedactSecrets())


class ExpectedDisconnects(logging.Filter):
    """A slow reader cut off is routine, not a server error: log one line at INFO instead."""

    def __init__(self, expected: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.expected = expected

    def _is_expected(self, exc: BaseException | None) -> bool:
        if isinstance(exc, BaseExceptionGroup):
            return all(self._is_expected(e) for e in exc.exceptions)
        return isinstance(exc, self.expected)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and self._is_expected(exc):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "cut off a slow reader (%s)", (type(exc).__name__,)
            record.exc_info = None
            record.exc_text = None
        return True


def install_expected_disconnects(expected: tuple[type[BaseException], ...]) -> None:
    for name in ("uvicorn.error", f"{PACKAGE}.web.errors"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ExpectedDisconnects) for f in logger.filters):
            logger.addFilter(ExpectedDisconnects(expected))
