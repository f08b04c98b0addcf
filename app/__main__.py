"""`python -m app`: serve fourcast with the production choices the settings imply.

The app enforces its limits itself, so plain `uvicorn app.main:app` is safe too; this runner adds
what only the server can do: protocol pings every `heartbeat` seconds, the WebSocket frame cap,
uvloop and httptools, and the sans-I/O WebSocket implementation.
"""

from __future__ import annotations

import argparse
import math
import os

import uvicorn

from .server.fence import fast_protocols
from .settings import load_settings

PACKAGE = __package__ or "app"  # `app` in the checkout, `fourcast` when installed


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--no-access-log", action="store_true")
    args = parser.parse_args()
    settings = load_settings()
    protocols = fast_protocols(PACKAGE)
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"fourcast: demo pages at http://{shown_host}:{args.port}/", flush=True)
    uvicorn.run(
        f"{PACKAGE}.main:app",
        host=args.host,
        port=args.port,
        loop="uvloop",
        http=protocols["http"],
        ws=protocols["ws"],
        ws_max_size=settings.max_ws_message_bytes + 1024,
        timeout_keep_alive=math.ceil(settings.http_keep_alive),  # uvicorn takes whole seconds
        ws_ping_interval=settings.heartbeat,
        ws_ping_timeout=settings.heartbeat_grace,
        ws_per_message_deflate=settings.ws_permessage_deflate,
        log_level=args.log_level,
        access_log=not args.no_access_log,
        proxy_headers=False,
        timeout_graceful_shutdown=max(1, int(settings.drain_timeout)),
    )


if __name__ == "__main__":
    main()
