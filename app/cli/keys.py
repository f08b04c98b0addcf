"""`fourcast keys new NAME`: a strong service key and the FOURCAST_API_KEYS entry for it."""

from __future__ import annotations

import argparse
import re
import secrets

from .common import USAGE, Failure

NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
KEY_BYTES = 32  # 256 bits, 43 URL-safe characters


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    new = actions.add_parser("new", help="print a new key and its FOURCAST_API_KEYS entry")
    new.add_argument("name", help="the service's name (events it publishes are from service:NAME)")
    new.set_defaults(run=run_new)


def run_new(args: argparse.Namespace) -> int:
    if not NAME.fullmatch(args.name):
        raise Failure(f"invalid name {args.name!r}: use 1-64 of A-Z a-z 0-9 _ . -", USAGE)
    key = secrets.token_urlsafe(KEY_BYTES)
    print(key)
    print(f"FOURCAST_API_KEYS={args.name}:{key}")
    return 0
