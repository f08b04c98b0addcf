"""Shared fixtures: real servers (uvicorn, redis-server, PostgreSQL) started by the suite itself."""

from __future__ import annotations

import gc

import pytest

pytest_plugins = [
    "tests.fixtures.server",
    "tests.fixtures.redis",
    "tests.fixtures.postgres",
]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish() -> None:
    """Collect the session's garbage before the plugins' own session-end steps.

    Those import modules lazily (schemathesis its report writers, hypothesis its observability
    module), and pytest parses each first import of a plugin's package to rewrite its asserts. On
    CPython 3.11.7 (fixed in 3.11.8: python/cpython#106905) a collection during that parse whose
    finalizer warns (a test's unclosed socket: pytest's unraisable hook formats the traceback,
    parsing again) fails the parse with "SystemError: AST constructor recursion depth mismatch",
    and pytest exits 1 after every test passed. Collected here, the finalizers run outside any
    parse; what they raise is reported as before (pytest's own collection, later, finds nothing).
    """
    gc.collect()
