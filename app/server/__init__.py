"""How fourcast is served: uvicorn protocol subclasses with ASGI extensions (`python -m app`).

The extensions' names live here, apart from the protocols, so the app can look for them in a
scope without importing uvicorn's internals (which app/server/internals.py checks before use).
"""

BODY_EXTENSION = "fourcast.body"
"""Synchronous writes of a streaming HTTP response and a disconnect callback (http.py)."""
FRAMES_EXTENSION = "fourcast.frames"
"""Pre-built WebSocket frames, written at once or sent as `FRAMES_MESSAGE` (websocket.py)."""
FRAMES_MESSAGE = "fourcast.frames"
