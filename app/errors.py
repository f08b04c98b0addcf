"""Domain errors, raised below the web layer and translated by each transport into its wire form.

Each carries a stable `code` and a human `message`; the web layer picks the HTTP status, the
WebSocket layer picks an error op or a close code. No HTTP type is imported below the web layer.
"""

from __future__ import annotations


class FourcastError(Exception):
    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(FourcastError):
    code = "invalid_input"


class BadParameter(FourcastError):
    code = "bad_parameter"


class Unauthorized(FourcastError):
    code = "unauthorized"


class Forbidden(FourcastError):
    code = "forbidden"


class UnsupportedMediaType(FourcastError):
    code = "unsupported_media_type"


class NotFound(FourcastError):
    code = "not_found"


class RateLimited(FourcastError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(FourcastError):
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: float = 1.0, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
