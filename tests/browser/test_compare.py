"""/compare: four panes, one per transport, on one room. A burst of 50 reaches all four with the
same counters, no gap and no duplicate; "drop connection" on each pane, and the browser going
offline, resume with nothing missed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import NewTab
from tests.browser.pages import TRANSPORTS, by_testid
from tests.fixtures.server import ServerProcess, Servers

pytestmark = pytest.mark.browser

BURST_TIMEOUT = 20_000


@pytest.fixture(scope="module")
def compare_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    servers = Servers(tmp_path_factory.mktemp("compare"))
    yield servers.start(
        publish_rate=1000, publish_burst=1000, publish_address_rate=1000, publish_address_burst=1000
    )
    servers.stop_all()


def pane(page: Page, transport: str) -> Locator:
    return by_testid(page, f"pane-{transport}")


def open_compare(page: Page, base_url: str, room: str) -> None:
    page.goto(f"{base_url}/compare?room={room}")
    expect(by_testid(page, "viewer")).not_to_have_text("…")
    for transport in TRANSPORTS:
        expect(by_testid(pane(page, transport), "pane-state")).to_have_text("live")


def burst(page: Page, size: int = 50) -> None:
    by_testid(page, "burst-count").fill(str(size))
    by_testid(page, "burst-button").click()
    expect(by_testid(page, "burst-status")).to_contain_text(
        f"sent {size} in", timeout=BURST_TIMEOUT
    )


def expect_panes(page: Page, *, total: int, burst_size: int) -> None:
    """Every pane: the whole last burst, `total` distinct messages, no gap, no duplicate."""
    for transport in TRANSPORTS:
        p = pane(page, transport)
        expect(by_testid(p, "pane-burst")).to_have_text(
            f"{burst_size}/{burst_size}", timeout=BURST_TIMEOUT
        )
        expect(by_testid(p, "pane-messages")).to_have_text(str(total))
        expect(by_testid(p, "pane-gaps")).to_have_text("0")
        expect(by_testid(p, "pane-duplicates")).to_have_text("0")
        expect(by_testid(p, "pane-state")).to_have_text("live")


def test_burst_reaches_every_pane_and_drops_recover(
    compare_server: ServerProcess, new_tab: NewTab, artifacts: Path
) -> None:
    tab = new_tab()
    page = tab.page
    open_compare(page, compare_server.url, "cmp-burst")

    burst(page, 50)
    expect_panes(page, total=50, burst_size=50)
    for transport in TRANSPORTS:
        p = pane(page, transport)
        # Latency and traffic figures are measured, not left blank.
        for figure in ("pane-latency-p50", "pane-latency-p95"):
            expect(by_testid(p, figure)).to_have_text(re.compile(r"^\d+(\.\d)? (ms|s)$"))
        expect(by_testid(p, "pane-requests")).not_to_have_text("0")
        assert int(by_testid(p, "pane-bytes").get_attribute("data-bytes") or 0) > 50 * 50
    page.screenshot(path=artifacts / "compare.png", full_page=True)

    # Drop each pane's connection and send the next burst at once: the messages published while
    # a pane reconnects reach it on resume.
    for round_, transport in enumerate(TRANSPORTS, start=1):
        p = pane(page, transport)
        by_testid(p, "pane-drop").click()
        burst(page, 50)
        expect_panes(page, total=50 * (round_ + 1), burst_size=50)
        expect(by_testid(p, "pane-reconnects")).to_have_text("1")
        expect(by_testid(p, "pane-recovery")).to_contain_text("ms")
        expect(by_testid(p, "pane-log")).to_contain_text("live again after")

    assert tab.dialogs == []
    assert tab.console_errors() == []


def test_offline_then_online_resumes_without_loss(
    compare_server: ServerProcess, new_tab: NewTab
) -> None:
    """While the browser is offline a service publishes 30 messages: every pane gets them all
    once it is back, each by its own transport's resume."""
    tab = new_tab()
    page = tab.page
    room = "cmp-offline"
    open_compare(page, compare_server.url, room)
    burst(page, 10)
    expect_panes(page, total=10, burst_size=10)

    tab.context.set_offline(True)
    for transport in TRANSPORTS:
        expect(by_testid(pane(page, transport), "pane-state")).to_have_text("offline")
    with httpx.Client(base_url=compare_server.url, headers=compare_server.service_headers) as api:
        for n in range(1, 31):
            response = api.post(
                f"/api/channels/room:{room}/events",
                json={"type": "chat.message", "data": {"text": f"while offline {n}"}},
            )
            assert response.status_code == 201, response.text
    tab.context.set_offline(False)

    for transport in TRANSPORTS:
        p = pane(page, transport)
        expect(by_testid(p, "pane-state")).to_have_text("live")
        expect(by_testid(p, "pane-messages")).to_have_text("40", timeout=BURST_TIMEOUT)
        expect(by_testid(p, "pane-gaps")).to_have_text("0")
        expect(by_testid(p, "pane-duplicates")).to_have_text("0")
        expect(by_testid(p, "pane-log").locator("li").first).to_have_text("while offline 30")
    assert tab.dialogs == []
