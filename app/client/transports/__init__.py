"""The four transports, best first: the order `auto` tries them in."""

from __future__ import annotations

from .base import Options, Transport
from .poll import PollTransport
from .sse import SseTransport
from .ws import WebSocketTransport

TRANSPORTS = ("websocket", "sse", "longpoll", "shortpoll")
ALIASES = {"ws": "websocket"}


def normalize(name: str) -> str:
    """A transport's name (`ws` for `websocket` is accepted), or ValueError."""
    name = ALIASES.get(name, name)
    if name != "auto" and name not in TRANSPORTS:
        raise ValueError(f"unknown transport {name!r}: use auto, {', '.join(TRANSPORTS)} or ws")
    return name


def make_transport(name: str, options: Options) -> Transport:
    if name == "websocket":
        return WebSocketTransport(options)
    if name == "sse":
        return SseTransport(options)
    return PollTransport(options, long=name == "longpoll")


__all__ = ["TRANSPORTS", "Options", "Transport", "make_transport", "normalize"]
