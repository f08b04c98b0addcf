"""/openapi.json describes what is served: the poll's real parameters, the publish body, and
the stream the fast lane dispatches; no route exists only for the schema."""

from __future__ import annotations

from typing import Any

from starlette.routing import Match

from app.main import create_app
from app.settings import Settings


def schema() -> dict[str, Any]:
    return create_app(Settings(database_url="")).openapi()


def parameters(operation: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["in"] for p in operation.get("parameters", [])}


def test_the_poll_route_declares_its_query_parameters() -> None:
    poll = schema()["paths"]["/api/channels/{channel}/events"]["get"]
    assert parameters(poll) == {
        "channel": "path",
        "after": "query",
        "limit": "query",
        "wait": "query",
    }
    assert {"200", "400", "403", "503"} <= set(poll["responses"])


def test_publish_declares_its_body_and_idempotency_key() -> None:
    publish = schema()["paths"]["/api/channels/{channel}/events"]["post"]
    assert parameters(publish)["idempotency-key"] == "header"
    body = publish["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["type", "data"]


def test_the_stream_is_described_though_the_fast_lane_serves_it() -> None:
    stream = schema()["paths"]["/api/channels/{channel}/stream"]["get"]
    assert parameters(stream) == {"channel": "path", "after": "query", "last-event-id": "header"}
    assert "text/event-stream" in stream["responses"]["200"]["content"]


def matched(scope_type: str, method: str, path: str) -> bool:
    """Whether the app's router (not the fast lane in front of it) has a route for this."""
    app = create_app(Settings(database_url=""))
    scope = {"type": scope_type, "method": method, "path": path, "root_path": "", "headers": []}
    return any(route.matches(scope)[0] is Match.FULL for route in app.routes)


def test_the_router_has_no_route_for_what_the_fast_lane_serves_but_a_wrong_method() -> None:
    assert not matched("websocket", "GET", "/ws")
    # Routed only to answer what the fast lane leaves (a wrong method, a plain GET of /ws:
    # app/web/api/lanes.py), and not in the schema a second time.
    assert matched("http", "GET", "/api/channels/public:x/stream")
    assert not matched("http", "PUT", "/api/channels/public:x/stream")
    paths = schema()["paths"]
    assert list(paths["/api/channels/{channel}/stream"]) == ["get"] and "/ws" not in paths
    assert matched("http", "GET", "/api/channels/public:x/events")
    assert matched("http", "POST", "/api/channels/public:x/events")
