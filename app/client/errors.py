"""What can go wrong, as exceptions a caller can tell apart."""

from __future__ import annotations

import json
from collections.abc import Mapping


class FourcastError(Exception):
    """An error the server reported (`code` from its error body), or one the client met."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if status is None else f"{status} {code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Worth trying again later (with the same Idempotency-Key for a publish)."""
        return self.status is None or self.status == 429 or self.status >= 500


class AuthError(FourcastError):
    """Missing, bad or expired credentials (401, WebSocket close 4401). Never retried:
    retrying the same credentials would only repeat the refusal."""

    @property
    def retryable(self) -> bool:
        return False


class ForbiddenError(FourcastError):
    """The credentials are fine but not allowed to do this (403, WebSocket close 4403)."""

    @property
    def retryable(self) -> bool:
        return False


class TransportDisabled(ForbiddenError):
    """The server has turned this transport off (`transport_disabled`); `auto` steps down."""


class UnavailableError(FourcastError):
    """The server cannot be reached or is not ready (network error, 503)."""


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the server never sends one; back off instead


def error_from_response(status: int, body: bytes, headers: Mapping[str, str]) -> FourcastError:
    """The exception for a non-2xx answer, with the server's code and message when it sent them."""
    code, message = f"http_{status}", f"HTTP {status}"
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        code = str(parsed["error"].get("code") or code)
        message = str(parsed["error"].get("message") or message)
    retry_after = retry_after_seconds(headers.get("retry-after"))
    kind: type[FourcastError] = FourcastError
    if status == 401:
        kind = AuthError
    elif status == 403:
        kind = TransportDisabled if code == "transport_disabled" else ForbiddenError
    elif status == 503:
        kind = UnavailableError
    return kind(code, message, status=status, retry_after=retry_after)
