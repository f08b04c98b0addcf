"""fourcast: real-time events over short polling, long polling, SSE and WebSocket.

Imported as `app` in a checkout and as `fourcast` once installed; the version lives here only.
"""

__version__ = "0.1.0"
