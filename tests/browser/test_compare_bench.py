"""The benchmark section of /compare: three small charts drawn with the vendored uPlot from a
results file with peers in it, the run's date, machine and commit, the guide's figures read from
the same rows, a clean console, and a page at most 2.5 viewports tall at 1280x800. The live panes
show bytes and requests per delivered message while a burst runs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ViewportSize, expect

from tests.browser.conftest import NewTab
from tests.browser.pages import TRANSPORTS, by_testid
from tests.fixtures.server import ServerProcess, Servers

pytestmark = pytest.mark.browser

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
MAX_VIEWPORTS = 2.5


def fanout(transport: str, rate: int, p99: float, cpu: float, **extra: Any) -> dict[str, Any]:
    return {
        "transport": transport,
        "kind": "fanout",
        "subscribers": 1000,
        "scenario": f"fanout 1000 @ {rate // 1000}k/s",
        "target_deliveries_per_s": rate,
        "deliveries_per_s": rate * 0.999,
        "cpu_ms_per_1000": cpu,
        "p50_ms": p99 / 3,
        "p99_ms": p99,
        "loss": 0,
        **extra,
    }


def idle(transport: str, kib: float, **extra: Any) -> dict[str, Any]:
    return {
        "transport": transport,
        "kind": "idle",
        "subscribers": 10000,
        "held": 10000,
        "scenario": "idle 10000 held",
        "kib_per_conn": kib,
        **extra,
    }


def poll(transport: str, cpu: float, p50: float) -> dict[str, Any]:
    return {
        "transport": transport,
        "kind": "poll",
        "subscribers": 500,
        "events_per_s": 10,
        "scenario": f"{transport} 500 @ 10 ev/s",
        "deliveries_per_s": 5000,
        "cpu_ms_per_1000": cpu,
        "p50_ms": p50,
        "p99_ms": p50 * 2,
    }


RESULTS = {
    "created": "2026-11-29T09:30:00+0000",
    "suite": "full",
    "machine": {"cpu_model": "Test CPU 9000", "cores": 2, "memory_mb": 8192},
    "versions": {"fourcast": "abc1234def56", "nchan": "1.3.7"},
    "results": [
        fanout("websocket", 5000, 4.0, 11.0),
        fanout("websocket", 20000, 7.5, 9.3),
        fanout("websocket", 70000, 40.0, 8.0),
        fanout("websocket", 140000, 250.0, 7.0),
        fanout("sse", 5000, 5.0, 12.0),
        fanout("sse", 20000, 9.5, 10.75),
        idle("websocket", 18.25),
        idle("sse", 17.75),
        poll("longpoll", 31.4, 6.0),
        poll("shortpoll", 13.5, 480.0),
        fanout("websocket", 20000, 9.0, 12.5, launch="uvicorn"),
        fanout("websocket", 20000, 5.5, 6.25, server="nchan"),
        fanout("websocket", 70000, 12.0, 6.0, server="nchan"),
        fanout("sse", 20000, 6.5, 7.0, server="nchan"),
        idle("websocket", 3.5, server="nchan"),
        fanout("websocket", 20000, 30.0, 22.0, server="floor", auth="guest"),
        idle("websocket", 45.0, server="floor"),
    ],
}


@pytest.fixture(scope="module")
def bench_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("compare-bench")
    results = root / "latest.json"
    results.write_text(json.dumps(RESULTS))
    servers = Servers(root)
    yield servers.start(
        publish_rate=1000,
        publish_burst=1000,
        publish_address_rate=1000,
        publish_address_burst=1000,
        bench_results=results,
    )
    servers.stop_all()


def test_benchmark_charts_with_peers(
    bench_server: ServerProcess, new_tab: NewTab, artifacts: Path
) -> None:
    tab = new_tab(viewport=VIEWPORT)
    page = tab.page
    page.goto(f"{bench_server.url}/compare?room=bench")
    for chart in ("chart-cpu", "chart-p99", "chart-kib"):
        expect(by_testid(page, chart).locator("canvas")).to_have_count(1)
    # Peers beside fourcast: in the note, and as series of the charts (their legends).
    expect(by_testid(page, "bench-peers")).to_have_attribute("data-peers", "nchan floor")
    expect(by_testid(page, "bench-peers")).to_contain_text("nchan 1.3.7")
    cpu_legend = by_testid(page, "chart-cpu").locator(".u-legend")
    for series in ("fourcast", "fourcast (uvicorn)", "nchan", "floor (guest)"):
        expect(cpu_legend.get_by_text(series, exact=True)).to_have_count(1)
    expect(by_testid(page, "chart-p99").locator(".u-legend")).to_contain_text("websocket · nchan")
    expect(by_testid(page, "chart-kib").locator(".u-legend")).to_contain_text("floor")
    # The run: date, machine and commit.
    run = by_testid(page, "bench-run")
    for part in ("2026-11-29 09:30 UTC", "Test CPU 9000, 2 cores", "abc1234def56"):
        expect(run).to_contain_text(part)
    # Every row in the table (collapsed), peers included.
    expect(by_testid(page, "bench-row")).to_have_count(len(RESULTS["results"]))
    expect(page.locator('[data-testid="bench-row"][data-server="nchan"]')).to_have_count(4)

    # The guide's figures are fourcast's, from the same rows (none typed into the page).
    figures = {
        "cpu:websocket": "9.3",  # the 20k/s row
        "p99:websocket": "7.5",
        "max:websocket": "69,930",  # the fastest within a 100 ms p99
        "kib:sse": "18",
        "cpu:longpoll": "31",
        "load:sse": "1,000 readers at 20,000 deliveries/s",
        "load:shortpoll": "500 pollers, 10 events/s",
        "p50:shortpoll": "480",
        "vs-websocket:longpoll": "3.4",
    }
    guide = by_testid(page, "guide")
    for key, text in figures.items():
        expect(guide.locator(f'[data-figure="{key}"]').first).to_have_text(text)
    expect(guide.locator("[data-figure]").filter(has_text=re.compile("^\u2013$"))).to_have_count(0)

    for transport in TRANSPORTS:
        expect(by_testid(by_testid(page, f"pane-{transport}"), "pane-state")).to_have_text("live")
    page.screenshot(path=artifacts / "compare-bench.png", full_page=True)
    height = page.evaluate("() => document.documentElement.scrollHeight")
    assert height <= MAX_VIEWPORTS * VIEWPORT["height"], f"the page is {height} px tall"
    assert tab.console_errors() == []


def test_live_panes_show_cost_per_message(bench_server: ServerProcess, new_tab: NewTab) -> None:
    """During and after a burst each pane shows bytes and requests per delivered message: the
    pollers pay requests for their messages, the streams next to none."""
    tab = new_tab()
    page = tab.page
    page.goto(f"{bench_server.url}/compare?room=per-message")
    for transport in TRANSPORTS:
        expect(by_testid(by_testid(page, f"pane-{transport}"), "pane-state")).to_have_text("live")
    expect(by_testid(page, "pane-method")).to_contain_text("900 B of HTTP headers")
    by_testid(page, "burst-count").fill("40")
    by_testid(page, "burst-button").click()
    per_request: dict[str, float] = {}
    for transport in TRANSPORTS:
        pane = by_testid(page, f"pane-{transport}")
        expect(by_testid(pane, "pane-burst")).to_have_text("40/40", timeout=20_000)
        expect(by_testid(pane, "pane-bytes-per-msg")).to_have_text(re.compile(r"^[\d,]+ B$"))
        expect(by_testid(pane, "pane-requests-per-msg")).to_have_text(re.compile(r"^\d+\.\d\d$"))
        per_message = float(by_testid(pane, "pane-bytes-per-msg").get_attribute("data-value") or 0)
        assert per_message > len("burst b #40/40"), transport  # at least the message itself
        value = by_testid(pane, "pane-requests-per-msg").get_attribute("data-value")
        per_request[transport] = float(value or 0)
    # A WebSocket receives the whole burst on the socket it already had.
    assert per_request["websocket"] == 0
    assert per_request["shortpoll"] > 0
    assert tab.console_errors() == []


def test_benchmark_charts_from_the_repository_run(
    tmp_path_factory: pytest.TempPathFactory, new_tab: NewTab
) -> None:
    """The run committed in bench/results/latest.json (the default file) charts without errors,
    and the page says whether peers were measured in it."""
    run = json.loads(
        (Path(__file__).resolve().parents[2] / "bench/results/latest.json").read_text()
    )
    measured = {r.get("server") or "fourcast" for r in run["results"]} - {"fourcast"}
    servers = Servers(tmp_path_factory.mktemp("compare-repo-run"))
    try:
        server = servers.start()
        tab = new_tab(viewport=VIEWPORT)
        page = tab.page
        page.goto(f"{server.url}/compare?room=repo-run")
        for chart in ("chart-cpu", "chart-p99", "chart-kib"):
            expect(by_testid(page, chart).locator("canvas")).to_have_count(1)
        peers = by_testid(page, "bench-peers")
        if measured:
            for peer in measured:
                expect(peers).to_contain_text(peer)
        else:
            expect(peers).to_have_text(re.compile("^No peer was measured in this run"))
        expect(by_testid(page, "bench-row")).to_have_count(len(run["results"]))
        for transport in TRANSPORTS:
            expect(by_testid(by_testid(page, f"pane-{transport}"), "pane-state")).to_have_text(
                "live"
            )
        height = page.evaluate("() => document.documentElement.scrollHeight")
        assert height <= MAX_VIEWPORTS * VIEWPORT["height"], f"the page is {height} px tall"
        assert tab.console_errors() == []
    finally:
        servers.stop_all()
