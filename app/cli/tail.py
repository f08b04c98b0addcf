"""`fourcast tail CHANNEL`: print a channel's events as they come, resuming after any drop.

Events go to stdout (one line each, or JSON with --json); the transport in use, retries and
resets go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math

from .common import USAGE, Failure, add_server_options, client_for, note


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("channel")
    parser.add_argument(
        "--transport",
        default="auto",
        choices=("auto", "ws", "websocket", "sse", "longpoll", "shortpoll"),
    )
    parser.add_argument("--after", help="start after this cursor (default: from now on)")
    parser.add_argument("--json", action="store_true", help="print each event as one JSON line")
    parser.add_argument(
        "--poll-interval", type=float, default=1.0, help="short-poll period, s (default 1)"
    )
    parser.add_argument(
        "--max-backoff", type=float, default=30.0, help="longest wait between retries, s"
    )
    add_server_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Written so that nan and inf fail too: either would wait for ever.
    if not 0 < args.poll_interval < math.inf or not 0.5 <= args.max_backoff < math.inf:
        raise Failure(
            "--poll-interval must be > 0 and --max-backoff at least 0.5, both finite", USAGE
        )
    try:
        return asyncio.run(_tail(args))
    except KeyboardInterrupt:
        return 130


async def _tail(args: argparse.Namespace) -> int:
    from ..client import FourcastError, Reset, Status

    def status(change: Status) -> None:
        if change.state == "live":
            note(f"fourcast tail: {args.channel} over {change.transport}")
        elif change.state == "retrying":
            wait = f"; retrying in {change.delay:.1f} s" if change.delay is not None else ""
            note(f"fourcast tail: {change.transport}: {change.reason}{wait}")

    def reset(signal: Reset) -> None:
        note(
            f"fourcast tail: reset on {signal.channel}: the cursor is gone from the server's "
            "history; resuming from its oldest retained event"
        )

    client = client_for(
        args,
        transport=args.transport,
        poll_interval=args.poll_interval,
        backoff_cap=args.max_backoff,
    )
    async with client:
        try:
            subscription = client.subscribe(
                args.channel, after=args.after, on_reset=reset, on_status=status
            )
        except ValueError as exc:  # a bad --after
            raise Failure(f"--after: {exc}", USAGE) from None
        try:
            async for event in subscription:
                if args.json:
                    print(json.dumps(event.to_dict()), flush=True)
                else:
                    data = json.dumps(event.data, ensure_ascii=False)
                    print(
                        f"{event.id or '-'} {event.type} {event.sender or '-'} {data}", flush=True
                    )
        except FourcastError as exc:
            raise Failure(str(exc)) from None
    return 0
