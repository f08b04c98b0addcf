"""Polls and publishes answered by the fast lane, ahead of FastAPI's router (app/web/fastlane.py,
pollentry.py, publishentry.py), get the answers their routes give: the same requests, sent once
through the app and once straight to FastAPI's own stack (routes, middleware, error handlers),
get the same statuses, bodies and headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from app.main import create_app
from app.settings import Settings

KEY = "k" * 32
SERVICE = {"Authorization": f"Bearer {KEY}"}
ROUTED = "x-test-routed"
COMPARED = ("content-type", "x-content-type-options", "referrer-policy")


class PastTheLane:
    """The app, except that a request with the ROUTED header skips the fast lane."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.stack = FastAPI.build_middleware_stack(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(name == ROUTED.encode() for name, _ in scope["headers"]):
            scope["app"] = self.app
            await self.stack(scope, receive, send)
        else:
            await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("lane")
    settings = Settings(data_dir=Path(data), secret_key="s" * 48, api_keys=f"svc:{KEY}")
    app = create_app(settings)
    with TestClient(PastTheLane(app), base_url="http://127.0.0.1") as test_client:
        yield test_client


def normal(body: bytes) -> Any:
    text = re.sub(rb'"ts":[0-9.]+', b'"ts":0', body)
    text = re.sub(rb'"id":"\d+"', b'"id":"n"', text)
    text = re.sub(rb'"next":"(\d+)_\d+"', rb'"next":"\1_t"', text)
    return re.sub(rb'"request_id":"[0-9a-f]+"', b'"request_id":"r"', text)


def both(
    client: TestClient, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
) -> list[tuple[Any, ...]]:
    """The answer through the app, then straight through FastAPI's stack."""
    answers = []
    for extra in ({}, {ROUTED: "1"}):
        response = client.request(method, path, headers={**(headers or {}), **extra}, **kw)
        kept = tuple(response.headers.get(name) for name in COMPARED)
        # The length is checked against the body rather than compared: two publishes' bodies
        # differ in their `ts` and `id`, whose lengths vary (normal() blanks them).
        length = response.headers.get("content-length")
        assert length is None or int(length) == len(response.content), (length, response.content)
        answers.append((response.status_code, kept, normal(response.content)))
    return answers


PUBLISHES: dict[str, dict[str, Any]] = {
    "published": {"json": {"type": "t", "data": {"n": 1}}, "headers": SERVICE},
    "ephemeral": {"json": {"type": "t", "data": 1, "ephemeral": True}, "headers": SERVICE},
    "not json": {"content": b"{nope", "headers": {**SERVICE, "content-type": "application/json"}},
    "not an object": {"json": [1], "headers": SERVICE},
    "no type": {"json": {"data": 1}, "headers": SERVICE},
    "no data": {"json": {"type": "t"}, "headers": SERVICE},
    "bad ephemeral": {"json": {"type": "t", "data": 1, "ephemeral": "yes"}, "headers": SERVICE},
    "bad type": {"json": {"type": "no spaces", "data": 1}, "headers": SERVICE},
    "text body": {"content": b"{}", "headers": {**SERVICE, "content-type": "text/plain"}},
    "anonymous": {"json": {"type": "t", "data": 1}},
    "bad bearer": {"json": {"type": "t", "data": 1}, "headers": {"Authorization": "Bearer no"}},
    "long key": {
        "json": {"type": "t", "data": 1},
        "headers": {**SERVICE, "Idempotency-Key": "k" * 201},
    },
    "too large": {"json": {"type": "t", "data": "x" * 70_000}, "headers": SERVICE},
}


@pytest.mark.parametrize("case", list(PUBLISHES))
def test_a_publish_gets_the_routes_answer(client: TestClient, case: str) -> None:
    lane, routed = both(client, "POST", "/api/channels/public:lane/events", **PUBLISHES[case])
    assert lane == routed
    assert lane[1][1] == "nosniff"


def test_a_bad_channel_and_an_idempotent_retry_get_the_routes_answers(client: TestClient) -> None:
    lane, routed = both(
        client, "POST", "/api/channels/nope/events", json={"type": "t", "data": 1}, headers=SERVICE
    )
    assert lane == routed and lane[0] == 400
    for key in ("first", "second"):
        headers = {**SERVICE, "Idempotency-Key": key}
        body = {"type": "t", "data": 1}
        client.post("/api/channels/public:lane/events", json=body, headers=headers)
        lane, routed = both(
            client, "POST", "/api/channels/public:lane/events", json=body, headers=headers
        )
        assert lane == routed and lane[0] == 200


def test_a_cookie_publish_without_an_origin_is_refused_alike(client: TestClient) -> None:
    token = client.post("/api/session", json={"name": "pat"}).json()["token"]
    client.cookies.set("fourcast_session", token)
    try:
        lane, routed = both(
            client, "POST", "/api/channels/public:lane/events", json={"type": "t", "data": 1}
        )
    finally:
        client.cookies.clear()
    assert lane == routed and lane[0] == 403


POLLS = {
    "history": ("/api/channels/public:lane/events?limit=2", {}),
    "after a cursor": ("/api/channels/public:lane/events?after=1&limit=5", SERVICE),
    "long poll with events": ("/api/channels/public:lane/events?after=0&wait=5", {}),
    "bad limit": ("/api/channels/public:lane/events?limit=abc", {}),
    "bad channel": ("/api/channels/nope/events", {}),
    "room, anonymous": ("/api/channels/room:lane/events", {}),
    "room, bad bearer": ("/api/channels/room:lane/events", {"Authorization": "Bearer no"}),
    "room, service": ("/api/channels/room:lane/events?after=0", SERVICE),
}


@pytest.mark.parametrize("case", list(POLLS))
def test_a_poll_gets_the_routes_answer(client: TestClient, case: str) -> None:
    path, headers = POLLS[case]
    for n in range(2):
        client.post(
            "/api/channels/public:lane/events", json={"type": "t", "data": n}, headers=SERVICE
        )
    lane, routed = both(client, "GET", path, headers=headers)
    assert lane == routed
    assert lane[1][1] == "nosniff"
