"""One connection per browser: three tabs of /chat/<room>, signed in once, share one connection.

With SharedWorker (Chromium has it) the server counts one open connection for the three tabs,
every tab shows every message, and closing the first tab changes nothing for the other two: no
message lost or shown twice, and presence shows one join and no leave for that person. Without
SharedWorker (removed from the page, as in browsers that lack it) a leader tab holds the
connection; closing it hands the connection to another tab, which resumes from the cursor. With
sharing turned off, three tabs hold three connections. The guest is per browser (the cookie);
"join as another guest in this tab" makes a second person in one browser.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import NewTab, Tab
from tests.browser.pages import by_testid, expect_open_connections, open_chat
from tests.fixtures.server import ROOT, STARTUP_TIMEOUT, ServerProcess, Servers, free_port

pytestmark = pytest.mark.browser

NO_SHARED_WORKER = "window.SharedWorker = undefined;"
# The observer records the room's presence events (ephemeral: only a live connection sees them).
OBSERVE = """async (room) => {
  const { FourcastClient } = await import('/static/js/fourcast.js');
  window.presence = [];
  window.observed = [];
  const client = new FourcastClient({ transport: 'websocket' });
  client.subscribe(`room:${room}`, (e) => {
    if (e.type.startsWith('presence.')) window.presence.push(`${e.type} ${e.data.name}`);
    else if (e.type === 'chat.message') window.observed.push(e.data.text);
  });
  await new Promise((ok) => client.on('state', (s) => s === 'live' && ok()));
}"""


class UvicornProcess(ServerProcess):
    """The other launch path: plain `uvicorn app.main:app`, same settings."""

    def start(self) -> None:
        self.log_path = self.data_dir / f"uvicorn-{self.port}.log"
        command = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(self.port)]
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [*command, "--no-access-log"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"uvicorn exited at start-up:\n{self.log()}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"uvicorn did not start in time:\n{self.log()}")


@pytest.fixture(scope="module")
def share_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    servers = Servers(tmp_path_factory.mktemp("shared-tabs"))
    yield servers.start(
        publish_rate=1000, publish_burst=1000, publish_address_rate=1000, publish_address_burst=1000
    )
    servers.stop_all()


@pytest.fixture(scope="module")
def uvicorn_server(share_server: ServerProcess) -> Iterator[ServerProcess]:
    data = share_server.data_dir.parent / "uvicorn"
    data.mkdir()
    env = {**share_server.env, "FOURCAST_DATA_DIR": str(data)}
    server = UvicornProcess(free_port(), env, data)
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["python -m app", "uvicorn"])
def launched(request: pytest.FixtureRequest) -> ServerProcess:
    """The acceptance test runs on both launch paths."""
    name = "share_server" if request.param == "python -m app" else "uvicorn_server"
    server: ServerProcess = request.getfixturevalue(name)
    return server


def publish(server: ServerProcess, room: str, texts: list[str]) -> None:
    with httpx.Client(base_url=server.url, headers=server.service_headers) as api:
        for text in texts:
            response = api.post(
                f"/api/channels/room:{room}/events",
                json={"type": "chat.message", "data": {"text": text}},
            )
            assert response.status_code == 201, response.text


def more_tabs(tab: Tab, url: str, count: int) -> list[Page]:
    """Further tabs of the same browser profile (they find the person in the cookie)."""
    pages = []
    for _ in range(count):
        page = tab.context.new_page()
        page.on("pageerror", lambda exc: tab.errors.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda m: tab.errors.append(f"console: {m.text}") if m.type == "error" else None,
        )
        page.goto(url)
        expect(by_testid(page, "conn-state")).to_have_text("live")
        pages.append(page)
    return pages


def observer(new_tab: NewTab, server: ServerProcess, room: str) -> Page:
    """Another person, watching the room's presence events from before anyone else arrives."""
    watcher = new_tab()
    open_chat(watcher.page, server.url, room, "olga", "websocket")
    watcher.page.evaluate(OBSERVE, room)
    return watcher.page


def expect_texts(pages: list[Page], texts: list[str]) -> None:
    """Each page shows exactly these messages, in order: none lost, none twice."""
    for page in pages:
        expect(by_testid(page, "message-text")).to_have_text(texts)


def test_three_tabs_share_one_connection(launched: ServerProcess, new_tab: NewTab) -> None:
    share_server = launched
    room = "shared-worker"
    expect_open_connections(share_server.url, 0)  # the previous test's tabs are gone
    watch = observer(new_tab, share_server, room)
    expect_open_connections(share_server.url, 2)  # the observer's chat page and its own client
    tab = new_tab()
    open_chat(tab.page, share_server.url, room, "sam", "websocket")
    url = f"{share_server.url}/chat/{room}?transport=websocket"
    pages = [tab.page, *more_tabs(tab, url, 2)]
    for page in pages:
        expect(by_testid(page, "current-user")).to_have_text("sam")  # signed in once
        expect(by_testid(page, "conn-shared")).to_have_attribute("data-mode", "worker")
        expect(by_testid(page, "conn-shared")).to_have_attribute("data-tabs", "3")
    expect_open_connections(share_server.url, 3)  # the observer's two, and sam's one

    first = [f"before {n}" for n in range(1, 6)]
    publish(share_server, room, first)
    expect_texts(pages, first)

    # The tab that started the shared connection goes; the other two go on.
    tab.page.close()
    for page in pages[1:]:
        expect(by_testid(page, "conn-shared")).to_have_attribute("data-tabs", "2")
        expect(by_testid(page, "conn-state")).to_have_text("live")
    later = [f"after {n}" for n in range(1, 6)]
    publish(share_server, room, later)
    expect_texts(pages[1:], first + later)
    expect_open_connections(share_server.url, 3)
    # A message sent from a remaining tab reaches the other one and the observer.
    by_testid(pages[1], "message-input").fill("from tab two")
    by_testid(pages[1], "message-input").press("Enter")
    expect_texts(pages[1:], [*first, *later, "from tab two"])
    watch.wait_for_function("() => window.observed.includes('from tab two')")
    sam = [p for p in watch.evaluate("() => window.presence") if p.endswith(" sam")]
    assert sam == ["presence.join sam"]

    # Another transport is another shared connection; the tab resumes on it from its cursor.
    by_testid(pages[2], "transport-picker").select_option("sse")
    expect(by_testid(pages[2], "conn-transport")).to_have_text("sse")
    expect(by_testid(pages[2], "conn-shared")).to_have_attribute("data-tabs", "1")
    expect(by_testid(pages[1], "conn-shared")).to_have_attribute("data-tabs", "1")
    publish(share_server, room, ["on two connections"])
    expect_texts(pages[1:], [*first, *later, "from tab two", "on two connections"])
    # The last tab of a shared connection gone: the connection closes (the observer's two stay).
    for page in pages[1:]:
        page.close()
    expect_open_connections(share_server.url, 2)
    assert tab.console_errors() == []


def test_leader_tab_hands_over_without_shared_worker(
    share_server: ServerProcess, new_tab: NewTab
) -> None:
    room = "shared-leader"
    tab = new_tab()
    tab.context.add_init_script(NO_SHARED_WORKER)
    expect_open_connections(share_server.url, 0)
    open_chat(tab.page, share_server.url, room, "lena", "websocket")
    url = f"{share_server.url}/chat/{room}?transport=websocket"
    pages = [tab.page, *more_tabs(tab, url, 2)]
    expect(by_testid(tab.page, "conn-shared")).to_have_attribute("data-mode", "leader")
    for page in pages:
        expect(by_testid(page, "conn-shared")).to_have_attribute("data-tabs", "3")
    for page in pages[1:]:
        expect(by_testid(page, "conn-shared")).to_have_attribute("data-mode", "follower")
    expect_open_connections(share_server.url, 1)
    first = [f"before {n}" for n in range(1, 6)]
    publish(share_server, room, first)
    expect_texts(pages, first)

    # Close the leader and publish at once, while no tab holds a connection: the new leader
    # resumes from the cursor, and each tab reads what it missed.
    tab.page.close()
    during = [f"handover {n}" for n in range(1, 6)]
    publish(share_server, room, during)
    shared = [by_testid(p, "conn-shared") for p in pages[1:]]
    for badge in shared:
        expect(badge).to_have_attribute("data-tabs", "2")  # said by the new leader's hub
    assert sorted(b.get_attribute("data-mode") or "" for b in shared) == ["follower", "leader"]
    later = [f"after {n}" for n in range(1, 6)]
    publish(share_server, room, later)
    expect_texts(pages[1:], first + during + later)
    expect_open_connections(share_server.url, 1)
    assert tab.console_errors() == []


def test_sharing_off_means_a_connection_per_tab(
    share_server: ServerProcess, new_tab: NewTab
) -> None:
    room = "shared-off"
    tab = new_tab()
    expect_open_connections(share_server.url, 0)
    tab.page.goto(f"{share_server.url}/chat/{room}?transport=websocket&share=off")
    by_testid(tab.page, "signin-name").fill("otto")
    by_testid(tab.page, "signin-submit").click()
    expect(by_testid(tab.page, "conn-state")).to_have_text("live")
    url = f"{share_server.url}/chat/{room}?transport=websocket&share=off"
    pages = [tab.page, *more_tabs(tab, url, 2)]
    for page in pages:
        expect(by_testid(page, "current-user")).to_have_text("otto")
        expect(by_testid(page, "conn-shared")).to_have_attribute("data-mode", "off")
        expect(by_testid(page, "share-toggle")).not_to_be_checked()
    expect_open_connections(share_server.url, 3)
    texts = [f"solo {n}" for n in range(1, 4)]
    publish(share_server, room, texts)
    expect_texts(pages, texts)

    # Another guest in one tab: a second person in the same browser, the others stay otto.
    by_testid(pages[2], "another-guest").click()
    expect(by_testid(pages[2], "signin-title")).to_have_text("Join as another guest")
    by_testid(pages[2], "signin-name").fill("tess")
    by_testid(pages[2], "signin-submit").click()
    expect(by_testid(pages[2], "current-user")).to_have_text("tess")
    expect(by_testid(pages[2], "conn-state")).to_have_text("live")
    pages[1].reload()
    expect(by_testid(pages[1], "current-user")).to_have_text("otto")
    expect(by_testid(pages[1], "conn-state")).to_have_text("live")
    expect_open_connections(share_server.url, 3)
    assert tab.console_errors() == []
