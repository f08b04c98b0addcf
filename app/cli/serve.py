"""`fourcast serve` (also `python -m app` in a checkout, `python -m fourcast` installed): serve
fourcast with the production choices the settings imply.

The app enforces its limits itself, so plain `uvicorn app.main:app` is safe too; this runner adds
what only the server can do: protocol pings every `heartbeat` seconds, the WebSocket frame cap,
uvloop and httptools, and the sans-I/O WebSocket implementation.
"""

from __future__ import annotations

import argparse
import logging.config
import math
import os
import ssl
import sys
from pathlib import Path
from typing import Any

from .common import USAGE, Failure

PACKAGE = __name__.split(".")[0]  # `app` in the checkout, `fourcast` when installed
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's


class _Encrypted(Exception):
    """The key asks for a passphrase: uvicorn prompts for it, so it is not checked here."""


def _ask_passphrase() -> str:
    raise _Encrypted


def description(name: str) -> str:
    """Help for the command run as `name`: it names the spellings of this package (`app` in a
    checkout, `fourcast` installed), never the other's."""
    other = "python -m " + PACKAGE if name.startswith("fourcast ") else "fourcast serve"
    return (
        f"{name} (the same as {other}): serve fourcast with the production choices the settings"
        f" imply. The app enforces its limits itself, so plain `uvicorn {PACKAGE}.main:app` is"
        " safe too; this runner adds what only the server can do: protocol pings every"
        " `heartbeat` seconds, the WebSocket frame cap, uvloop and httptools, and the sans-I/O"
        " WebSocket implementation."
    )


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    # A string default goes through `type` at parse time: a bad $PORT is serve's usage error.
    parser.add_argument("--port", type=int, default=os.environ.get("PORT", "8000"))
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes; more than one needs a shared bus (FOURCAST_REDIS_URL)",
    )
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate chain: serve HTTPS/WSS")
    parser.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    parser.add_argument("--no-access-log", action="store_true")
    parser.set_defaults(run=run)


def check(args: argparse.Namespace, redis_url: str) -> None:
    """Refuse what cannot work, before anything starts."""
    if not 0 < args.port < 65536:
        raise Failure(f"--port must be 1-65535, got {args.port}", USAGE)
    if args.workers < 1:
        raise Failure(f"--workers must be at least 1, got {args.workers}", USAGE)
    if args.workers > 1 and not redis_url:
        raise Failure(
            f"--workers {args.workers} needs a bus shared by the workers: set FOURCAST_REDIS_URL "
            "(the embedded in-process bus serves one worker)",
            USAGE,
        )
    if (args.tls_cert is None) != (args.tls_key is None):
        raise Failure("--tls-cert and --tls-key go together", USAGE)
    for option, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path is not None and not path.is_file():
            raise Failure(f"{option}: no such file: {path}", USAGE)
    if args.tls_cert is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(args.tls_cert, args.tls_key, password=_ask_passphrase)
        except _Encrypted:
            pass
        except (ssl.SSLError, OSError) as exc:
            raise Failure(
                f"--tls-cert/--tls-key: not a PEM certificate and its key: {exc}", USAGE
            ) from None


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..server.internals import fast_protocols
    from ..settings import load_settings
    from .logformat import log_config

    settings = load_settings()
    check(args, settings.redis_url)
    scheme = "https" if args.tls_cert else "http"
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    banner = f"fourcast: demo pages at {scheme}://{shown_host}:{args.port}/"
    options: dict[str, Any] = dict(fast_protocols(PACKAGE))
    config = log_config(args.log_format)
    if config is not None:
        options["log_config"] = config
        # A status line among JSON logs is one more JSON object, not a line a shipper rejects.
        logging.config.dictConfig(config)
        logging.getLogger(f"{PACKAGE}.cli").info(banner)
    else:
        print(banner, file=sys.stderr, flush=True)  # status goes to stderr, as every command's
    if args.tls_cert:
        options.update(ssl_certfile=str(args.tls_cert), ssl_keyfile=str(args.tls_key))
    options.update(
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
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
    try:
        uvicorn.run(f"{PACKAGE}.main:app", **options)
    except SystemExit as exc:
        # uvicorn exits 3 when it cannot start (a port in use): the CLI's failure status is 1.
        if exc.code not in (None, 0):
            raise Failure("could not start: see the error above") from None
    return 0
