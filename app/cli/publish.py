"""`fourcast publish CHANNEL TYPE [DATA]`: publish one event; DATA is JSON, from the argument or
stdin. Retried with one Idempotency-Key while the server is away, so it is stored once."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from .common import USAGE, Failure, add_server_options, client_for, note


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("channel")
    parser.add_argument("type")
    parser.add_argument("data", nargs="?", default="-", help="JSON; '-' or absent: read stdin")
    parser.add_argument("--idempotency-key", help="repeat a key to publish at most once")
    parser.add_argument("--ephemeral", action="store_true", help="deliver live only, never store")
    parser.add_argument(
        "--retry-for", type=float, default=30.0, help="seconds to keep retrying (default 30)"
    )
    add_server_options(parser)
    parser.set_defaults(run=run)


def read_data(raw: str) -> Any:
    text = sys.stdin.read() if raw == "-" else raw
    try:
        return json.loads(text)
    except ValueError as exc:
        raise Failure(f"DATA is not valid JSON: {exc}", USAGE) from None


def run(args: argparse.Namespace) -> int:
    from ..client.client import sendable_in_header

    if not args.retry_for >= 0:  # nan too: it would retry for ever
        raise Failure(f"--retry-for must be 0 or more seconds, got {args.retry_for}", USAGE)
    key = args.idempotency_key
    if key is not None and not sendable_in_header(key):
        raise Failure(f"--idempotency-key {key!r}: use printable ASCII only", USAGE)
    data = read_data(args.data)
    return asyncio.run(_publish(args, data))


async def _publish(args: argparse.Namespace, data: Any) -> int:
    from ..client import FourcastError

    def retrying(error: FourcastError, delay: float) -> None:
        note(f"fourcast publish: {error.message}; retrying in {delay:.1f} s")

    async with client_for(args, publish_retry_for=args.retry_for) as client:
        try:
            event = await client.publish(
                args.channel,
                args.type,
                data,
                ephemeral=args.ephemeral,
                idempotency_key=args.idempotency_key,
                on_retry=retrying,
            )
        except FourcastError as exc:
            raise Failure(str(exc)) from None
    if event is None:
        note("fourcast publish: accepted but not forwarded (throttled)")
        return 0
    print(json.dumps(event.to_dict()), flush=True)
    return 0
