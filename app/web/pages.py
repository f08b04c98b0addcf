"""HTML pages: the landing page, the chat demo and the transport comparison.

The pages are thin shells: all behaviour lives in ES modules under ``static/js`` (the CSP allows no
inline script or style), and anything user-supplied reaches the templates only through Jinja2's
autoescaping.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from ..paths import templates_dir

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=templates_dir())

ROOM_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
DEFAULT_COMPARE_ROOM = "compare"


def _not_found(request: Request, what: str) -> HTMLResponse:
    return templates.TemplateResponse(request, "not_found.html", {"what": what}, status_code=404)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    """What fourcast is, and where the demos are."""
    return templates.TemplateResponse(request, "index.html", {"page": "index"})


@router.get("/chat")
async def chat_default() -> RedirectResponse:
    """The chat demo without a room: the lobby."""
    return RedirectResponse("/chat/lobby", status_code=307)


@router.get("/chat/{room}", response_class=HTMLResponse)
async def chat(request: Request, room: str) -> HTMLResponse:
    """The chat demo for one room."""
    if not ROOM_RE.fullmatch(room):
        return _not_found(request, "That is not a valid room name.")
    return templates.TemplateResponse(request, "chat.html", {"page": "chat", "room": room})


@router.get("/compare", response_class=HTMLResponse)
async def compare(request: Request, room: str = DEFAULT_COMPARE_ROOM) -> HTMLResponse:
    """Four transports side by side on one room."""
    if not ROOM_RE.fullmatch(room):
        return _not_found(request, "That is not a valid room name.")
    return templates.TemplateResponse(request, "compare.html", {"page": "compare", "room": room})
