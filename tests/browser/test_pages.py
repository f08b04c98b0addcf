"""The pages themselves: user data rendered as text only, the security headers, a clean console on
load, the notification bell, and screenshots of /chat and /compare (in tests/artifacts/)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import ViewportSize, expect

from tests.browser.conftest import NewTab
from tests.browser.pages import TRANSPORTS, by_testid, messages, open_chat, presence_member
from tests.fixtures.server import ServerProcess, Servers

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"
XSS_NAME = "<b onmouseover=alert(2)>eve</b>"


@pytest.fixture(scope="module")
def pages_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    servers = Servers(tmp_path_factory.mktemp("pages"))
    yield servers.start(
        presence_lease=2,
        publish_rate=1000,
        publish_burst=1000,
        publish_address_rate=1000,
        publish_address_burst=1000,
    )
    servers.stop_all()


def test_markup_in_a_message_shows_literally(
    pages_server: ServerProcess, new_tab: NewTab, artifacts: Path
) -> None:
    alice, bob = new_tab(), new_tab()
    open_chat(alice.page, pages_server.url, "xss", XSS_NAME, "websocket")
    open_chat(bob.page, pages_server.url, "xss", "bob", "sse")
    by_testid(alice.page, "message-input").fill(XSS)
    by_testid(alice.page, "message-input").press("Enter")

    for tab in (alice, bob):
        page = tab.page
        text = by_testid(messages(page), "message-text")
        expect(text).to_have_text([XSS])
        expect(by_testid(messages(page), "message-author")).to_have_text([XSS_NAME])
        expect(presence_member(page, XSS_NAME)).to_have_count(1)
        # Text, not markup: no element was made from it anywhere on the page.
        expect(page.locator("#main img, #main b")).to_have_count(0)
    # A reload renders the same message from history, as text again.
    bob.page.reload()
    expect(by_testid(bob.page, "conn-state")).to_have_text("live")
    expect(by_testid(messages(bob.page), "message-text")).to_have_text([XSS])
    expect(bob.page.locator("#main img")).to_have_count(0)
    by_testid(bob.page, "message-input").fill("a second line")
    by_testid(bob.page, "message-input").press("Enter")
    expect(by_testid(messages(alice.page), "message-text")).to_have_text([XSS, "a second line"])
    alice.page.screenshot(path=artifacts / "chat.png", full_page=True)

    for tab in (alice, bob):
        assert tab.dialogs == [], "a dialog opened: markup ran"
        assert tab.page.evaluate("() => document.querySelectorAll('img[src=\"x\"]').length") == 0
        assert tab.console_errors() == []


PHONE: ViewportSize = {"width": 390, "height": 800}
LONG_TEXT = "W" * 4000  # the longest chat message, with nowhere to break
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


def test_long_names_and_messages_stay_within_a_phone_screen(
    pages_server: ServerProcess, new_tab: NewTab
) -> None:
    """Unbroken text (a 40-character name, a 4,000-character message) wraps or is cut: it never
    widens a page beyond the screen, in the chat's header, messages and typing line, nor in a
    pane of /compare."""
    alice, bob = new_tab(viewport=PHONE), new_tab(viewport=PHONE)
    open_chat(alice.page, pages_server.url, "long", "A" * 40, "websocket")
    open_chat(bob.page, pages_server.url, "long", "B" * 40, "websocket")
    compare = new_tab(viewport=PHONE).page
    compare.goto(f"{pages_server.url}/compare?room=long")
    shortpoll = by_testid(compare, "pane-shortpoll")
    expect(by_testid(shortpoll, "pane-state")).to_have_text("live")

    by_testid(alice.page, "message-input").fill(LONG_TEXT)
    by_testid(alice.page, "message-input").press("Enter")
    by_testid(bob.page, "message-input").fill("typing")
    expect(by_testid(alice.page, "typing-indicator")).to_contain_text("B" * 40)
    for tab in (alice, bob):
        expect(by_testid(messages(tab.page), "message-text")).to_have_text([LONG_TEXT])
        expect(by_testid(messages(tab.page), "message-author")).to_have_text(["A" * 40])
        assert tab.page.evaluate(NO_SIDEWAYS_SCROLL)
    expect(by_testid(shortpoll, "pane-log").locator("li").first).to_have_text(LONG_TEXT)
    assert compare.evaluate(NO_SIDEWAYS_SCROLL)


def test_notification_bell(pages_server: ServerProcess, new_tab: NewTab) -> None:
    """A service notifies a person: the bell counts it live, the panel shows it as text (a
    javascript: link is refused by the server; only http(s) links are ever made), and reading
    it in one tab clears it in another."""
    tab = new_tab()
    page = tab.page
    open_chat(page, pages_server.url, "bell", "nora", "longpoll")
    user = page.evaluate("() => fetch('/api/session').then(r => r.json()).then(b => b.user.id)")
    # A second tab of the same person (the browser's guest, from the cookie), on another transport.
    other = tab.context.new_page()
    other.goto(f"{pages_server.url}/chat/bell?transport=websocket")
    expect(by_testid(other, "current-user")).to_have_text("nora")
    expect(by_testid(other, "conn-state")).to_have_text("live")
    for p in (page, other):
        expect(by_testid(p, "bell-count")).to_have_text("0")

    with httpx.Client(base_url=pages_server.url, headers=pages_server.service_headers) as api:
        refused = api.post(
            "/api/notifications",
            json={"user": user, "title": "x", "url": "javascript:alert(3)"},
        )
        assert refused.status_code == 422, refused.text
        for title in (XSS, "Build passed"):
            sent = api.post(
                "/api/notifications",
                json={"user": user, "title": title, "body": f"about {title}", "url": "/compare"},
            )
            assert sent.status_code == 201, sent.text

    for p in (page, other):
        expect(by_testid(p, "bell-count")).to_have_text("2")
    by_testid(page, "bell").click()
    items = by_testid(page, "notification")
    expect(items).to_have_count(2)
    expect(items.filter(has_text=XSS)).to_have_count(1)
    expect(items.locator("a.title").first).to_have_attribute("href", re.compile(r"/compare$"))
    by_testid(items.filter(has_text="Build passed"), "notification-read").click()
    for p in (page, other):
        expect(by_testid(p, "bell-count")).to_have_text("1")
    by_testid(page, "notifications-mark-all").click()
    for p in (page, other):
        expect(by_testid(p, "bell-count")).to_have_text("0")
    expect(by_testid(page, "notifications")).to_be_hidden()
    assert tab.dialogs == []
    assert tab.console_errors() == []


@pytest.mark.parametrize("path", ["/", "/chat/lobby", "/compare", "/chat/not%20a%20room"])
def test_security_headers(pages_server: ServerProcess, path: str) -> None:
    response = httpx.get(pages_server.url + path)
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    directives = {
        d.split()[0]: d.split()[1:] for d in (part.strip() for part in csp.split(";")) if d
    }
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, csp
    script_src = directives.get("script-src", directives.get("default-src"))
    assert script_src == ["'self'"], csp
    assert directives.get("object-src") == ["'none'"], csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    # Static assets are served with a type and nosniff too (module scripts need the right type).
    js = httpx.get(pages_server.url + "/static/js/fourcast.js")
    assert js.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert js.headers["x-content-type-options"] == "nosniff"


def test_pages_load_with_a_clean_console(pages_server: ServerProcess, new_tab: NewTab) -> None:
    """No console error, uncaught exception or CSP violation on any page, also once in use."""
    tab = new_tab()
    page = tab.page
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e =>"
        " console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`))"
    )
    page.goto(pages_server.url + "/")
    expect(page.get_by_test_id("link-chat")).to_be_visible()
    response = page.goto(pages_server.url + "/chat/clean")
    assert response is not None
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    open_chat(page, pages_server.url, "clean", "carol", "auto")
    expect(by_testid(page, "conn-transport")).to_have_text("websocket")
    expect(by_testid(page, "transport-reason")).to_contain_text("websocket")
    page.goto(pages_server.url + "/compare?room=clean")
    for transport in TRANSPORTS:
        expect(by_testid(by_testid(page, f"pane-{transport}"), "pane-state")).to_have_text("live")
    expect(by_testid(page, "bench-empty")).not_to_have_text("Loading…")
    assert tab.console_errors() == []
    # A page that is not there: a 404 with a page of its own (the browser logs the status).
    response = page.goto(pages_server.url + "/chat/not%20a%20room")
    assert response is not None and response.status == 404
    expect(page.locator("#main")).to_contain_text("not a valid room name")
    assert tab.console_errors(allow=(r"status of 404 .*/chat/not%20a%20room",)) == []
    assert tab.dialogs == []


ATTACKER = "http://attacker.test/"
"""Another site than the server's (served by the test's route, never fetched)."""


def test_a_cross_site_page_cannot_make_a_signed_in_person_poll_a_room(
    pages_server: ServerProcess, new_tab: NewTab
) -> None:
    """A page of another site sends a signed-in visitor (a top-level navigation, or a popup) to
    a long poll of a room it chose. With a SameSite=Lax cookie the poll carried the session,
    and the room's presence then showed the visitor's id and name to anyone watching it."""
    victim = new_tab()
    open_chat(victim.page, pages_server.url, "lobby", "Vera", "websocket")
    trap = f"{pages_server.url}/api/channels/room:trap/events?after=0&wait=1"
    victim.page.route(
        ATTACKER,
        lambda route: route.fulfill(
            content_type="text/html",
            body=f"<!doctype html><script>location.href = {trap!r};</script>",
        ),
    )
    with victim.page.expect_response(lambda r: r.url.startswith(trap.split("?")[0])) as poll:
        victim.page.goto(ATTACKER)
    assert poll.value.status == 401, poll.value.text()  # it came with no session
    with httpx.Client(base_url=pages_server.url, timeout=10) as spy:
        token = spy.post("/api/session", json={"name": "spy"}).json()["token"]
        members = spy.get(
            "/api/channels/room:trap/presence", headers={"Authorization": f"Bearer {token}"}
        ).json()["members"]
    assert members == []
