"""What every subcommand shares: one-line errors, exit statuses, and where the server is."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from ..client import Client

USAGE = 2
"""Exit status for bad usage (argparse's too)."""
FAILURE = 1
"""Exit status for a failure: the server refused, could not be reached, a migration failed."""


class Failure(Exception):
    """Ends the command with one line on stderr and exit status `status`."""

    def __init__(self, message: str, status: int = FAILURE) -> None:
        super().__init__(message)
        self.status = status


class Parser(argparse.ArgumentParser):
    """argparse, with errors as one line (`fourcast tail: error: ...`), not usage plus error."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def note(message: str) -> None:
    """Progress and status for people: stderr, so stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """--url and credentials, with FOURCAST_URL / FOURCAST_API_KEY / FOURCAST_TOKEN defaults."""
    parser.add_argument(
        "--url",
        default=os.environ.get("FOURCAST_URL", "http://127.0.0.1:8000"),
        help="the server (default: $FOURCAST_URL or http://127.0.0.1:8000)",
    )
    # The variables are read in client_for, not as argparse defaults: a flag given must win over
    # the other credential's variable, which a default would present as given too.
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument(
        "--api-key", help="a service key from FOURCAST_API_KEYS (default: $FOURCAST_API_KEY)"
    )
    auth.add_argument("--token", help="a person's session token (default: $FOURCAST_TOKEN)")


def credentials(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(api_key, token): the flag given, else $FOURCAST_API_KEY or $FOURCAST_TOKEN."""
    if args.api_key or args.token:
        return args.api_key or None, args.token or None
    api_key = os.environ.get("FOURCAST_API_KEY") or None
    token = os.environ.get("FOURCAST_TOKEN") or None
    if api_key and token:
        raise Failure(
            "FOURCAST_API_KEY and FOURCAST_TOKEN are both set: give --api-key or --token", USAGE
        )
    return api_key, token


def client_for(args: argparse.Namespace, **options: Any) -> Client:
    """A fourcast.client for --url with the credentials given (imported only when needed)."""
    from ..client import Client

    api_key, token = credentials(args)
    try:
        return Client(args.url, api_key=api_key, token=token, **options)
    except ValueError as exc:  # a bad --url or credential: retrying could never succeed
        raise Failure(str(exc), USAGE) from None
