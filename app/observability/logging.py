"""Logging set-up, with credentials redacted from access-log lines."""

from __future__ import annotations

import logging
import re

SECRET_PARAM = re.compile(r"((?:ticket|token|access_token|api_key)=)[^&\s\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    return SECRET_PARAM.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    """A `?ticket=` or token in a URL must never reach a log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str) and "=" in record.msg:
            record.msg = redact(record.msg)
        return True


def install_redaction() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "app"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
