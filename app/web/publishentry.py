"""REST publishes at the app's own ASGI entry (app/web/fastlane.py), ahead of the router.

A POST to /api/channels/{channel}/events is the busiest request with a body, and FastAPI's
layers (routing, dependency resolution, exit stacks, exception middleware) cost more than the
publish itself. So the fast lane gives the route's own answer (`channels.publish_event`) here,
behind the same two middlewares the route has (the body cap and the security headers), and
turns errors into the same responses as the app's exception handlers. The route stays the one
/openapi.json describes.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..bus import BusUnavailable
from ..errors import FourcastError
from .api.channels import publish_event
from .errors import bus_unavailable_response, response_for, unexpected_response
from .middleware import BodyLimitMiddleware, BodyTooLarge, SecurityHeadersMiddleware


def publish_entry(max_body_bytes: int, discard_bytes: int) -> ASGIApp:
    """The ASGI app the fast lane gives a publish, its `path_params` set."""
    capped = BodyLimitMiddleware(
        serve_publish, max_bytes=max_body_bytes, discard_bytes=discard_bytes
    )
    return SecurityHeadersMiddleware(capped)


async def serve_publish(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    response: Response
    try:
        key = request.headers.get("idempotency-key")
        response = await publish_event(request, scope["path_params"]["channel"], key)
    except FourcastError as exc:
        response = response_for(exc)
    except BusUnavailable as exc:
        response = bus_unavailable_response(exc)
    except (BodyTooLarge, ClientDisconnect):
        raise  # the body cap answers (app/web/middleware.py)
    except Exception as exc:
        response = unexpected_response(scope["method"], scope["path"], exc)
    await response(scope, receive, send)
