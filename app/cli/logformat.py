"""`--log-format json`: one JSON object per log line, for log shippers."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from typing import Any

PACKAGE = __name__.split(".")[0]  # `app` in the checkout, `fourcast` when installed
ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            line.update(zip(ACCESS_FIELDS, args, strict=True))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def log_config(log_format: str) -> dict[str, Any] | None:
    """uvicorn's `log_config` for the format: None keeps uvicorn's own text format."""
    if log_format == "text":
        return None
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    json_formatter = {"()": f"{PACKAGE}.cli.logformat.JsonFormatter"}
    config["formatters"] = {"default": json_formatter, "access": dict(json_formatter)}
    # The app's own loggers propagate to the root: give it the same handler.
    config["loggers"][""] = {"handlers": ["default"], "level": "INFO"}
    # Alembic tells each plugin it sets up at INFO, on every start: as quiet as the text format.
    config["loggers"]["alembic"] = {"level": "WARNING"}
    return config
