"""The `fourcast` command: serve, migrate, publish, tail, keys.

Bad usage exits with status 2, a failure with 1, each with one line on stderr; a reader of stdout
that leaves (`fourcast tail | head`) ends the command quietly, with 0. Subcommands import
what they need when they run, so `fourcast tail` loads the client only, not the server.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from . import keys, migrate, publish, serve, tail
from .common import Failure, Parser

PACKAGE = __name__.split(".")[0]  # `app` in the checkout, `fourcast` when installed

COMMANDS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None]], ...] = (
    ("serve", "serve fourcast (HTTP, SSE and WebSocket)", serve.configure),
    ("migrate", "bring the database schema up to date", migrate.configure),
    ("publish", "publish one event", publish.configure),
    ("tail", "print a channel's events as they come", tail.configure),
    ("keys", "make service API keys", keys.configure),
)


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="fourcast", description="Real-time events over four transports.")
    top.add_argument("--version", action="version", version=f"fourcast {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text, configure in COMMANDS:
        described = serve.description(f"fourcast {name}") if name == "serve" else text
        sub = commands.add_parser(name, help=text, description=described)
        configure(sub)
    return top


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: exits with the command's status."""
    args = parser().parse_args(argv)
    sys.exit(execute(args, f"fourcast {args.command}"))


def execute(args: argparse.Namespace, name: str) -> int:
    """Run the command; its failure is one line on stderr, prefixed with `name`: the command as
    it was typed (`fourcast serve`, `python -m fourcast`)."""
    try:
        status: int = args.run(args)
    except Failure as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return exc.status
    except BrokenPipeError:
        # The reader of stdout left (`fourcast tail | head`): the end of the command, not a
        # failure. What is still buffered can go nowhere: stdout is pointed at /dev/null, or
        # the interpreter's last flush would print an error of its own.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    return status


def serve_main(argv: Sequence[str] | None = None) -> None:
    """`python -m app` (`python -m fourcast` installed): the same as `fourcast serve`, named by
    the spelling it was run as in its usage, help and errors."""
    name = f"python -m {PACKAGE}"
    sub = Parser(prog=name, description=serve.description(name))
    serve.configure(sub)
    args = sub.parse_args(argv)
    args.command = "serve"
    sys.exit(execute(args, name))
