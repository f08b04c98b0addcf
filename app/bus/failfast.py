"""Fail fast while a dependency is known to be away, instead of making every caller wait out a
timeout: after a connection failure or a timeout, one call at a time goes through to find out
whether it is back, and the others fail at once. A hung Redis then costs one timeout at a time,
not one per request, and the first call after it returns succeeds."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


class FailFast:
    def __init__(self, failures: tuple[type[BaseException], ...]) -> None:
        self._failures = failures
        self._down = False
        self._probing = False
        self.failed = 0
        """Connection failures and timeouts seen (for metrics and tests)."""

    @property
    def down(self) -> bool:
        return self._down

    @contextlib.contextmanager
    def attempt(self, refuse: Callable[[], BaseException]) -> Iterator[None]:
        """Run the body, or raise `refuse()` at once while down and another call is probing."""
        probe = False
        if self._down:
            if self._probing:
                raise refuse()
            self._probing = probe = True
        try:
            yield
        except self._failures:
            self._down = True
            self.failed += 1
            raise
        else:
            self._down = False
        finally:
            if probe:
                self._probing = False
