"""Playwright (sync API) driving Debian's Chromium: one browser per session, a fresh context per user.

The tests here are plain synchronous functions with synchronous fixtures only: Playwright's sync API
runs its own event loop and must not be called inside pytest-asyncio's. No browser is ever
downloaded: a missing /usr/bin/chromium fails the tests with a pointer to `make install-test`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Error,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TIMEOUT_MS = 10_000
VIEWPORT: ViewportSize = {"width": 1280, "height": 860}

expect.set_options(timeout=TIMEOUT_MS)


@dataclass
class Tab:
    """A page in its own browser context (its own cookies and sessionStorage: one person),
    with what it logged: console errors, uncaught exceptions and dialogs."""

    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def console_errors(self, *, allow: tuple[str, ...] = ()) -> list[str]:
        """The console errors and page errors, less those matching an `allow` pattern."""
        return [e for e in self.errors if not any(re.search(p, e) for p in allow)]


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for the whole browser suite. Package-scoped, not session-scoped: while the
    sync API is alive, asyncio sees its loop as running in this thread, so it must be gone
    before the suite's async tests (other packages) run."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make install-test` (it installs Debian's chromium "
            "from apt; the suite never downloads a browser)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
        except Error as exc:
            pytest.fail(
                f"could not launch {CHROMIUM} ({exc.message.splitlines()[0]}): "
                "run `make install-test`",
                pytrace=False,
            )
        yield browser
        browser.close()


class NewTab(Protocol):
    """The `new_tab` fixture's opener: a tab in a fresh context of the given viewport."""

    def __call__(self, *, viewport: ViewportSize = ...) -> Tab: ...


@pytest.fixture
def new_tab(browser: Browser) -> Iterator[NewTab]:
    """`new_tab()` opens a page in a fresh context; all are closed after the test."""
    contexts: list[BrowserContext] = []

    def open_tab(*, viewport: ViewportSize = VIEWPORT) -> Tab:
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        tab = Tab(context, page)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                tab.errors.append(f"console: {message.text} ({message.location.get('url')})")

        def on_dialog(dialog: Dialog) -> None:
            tab.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("console", on_console)
        page.on("pageerror", lambda exc: tab.errors.append(f"pageerror: {exc}"))
        page.on("dialog", on_dialog)
        return tab

    yield open_tab
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
