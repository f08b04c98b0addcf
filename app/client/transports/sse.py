"""Server-Sent Events: resume with Last-Event-ID. An event's type is read from its JSON `type`
field, not the SSE `event:` line; `event: reset` and `event: error` are the control words."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import AsyncGenerator, AsyncIterable

import httpx

from ..errors import error_from_response
from ..events import Event
from .base import Dropped, Item, Opened, Options, ResetSignal, channel_path, refused

CONTROL_RESET = "reset"
CONTROL_ERROR = "error"
LINE_END = re.compile("\r\n|\r|\n")
"""What ends an SSE line, and nothing else: httpx's aiter_lines also splits at U+2028, U+2029 and
U+0085, which JSON leaves raw inside a string (one such event stalled the stream for ever)."""


async def sse_lines(chunks: AsyncIterable[bytes]) -> AsyncGenerator[str, None]:
    """The stream's lines, decoded as UTF-8 (as SSE always is); an unfinished last one is not."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    rest, after_cr = "", False
    async for chunk in chunks:
        text = decoder.decode(chunk)
        if not text:
            continue
        if after_cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CR LF split across two chunks
        after_cr = text.endswith("\r")
        *complete, rest = LINE_END.split(rest + text)
        for line in complete:
            yield line


class SseTransport:
    name = "sse"

    def __init__(self, options: Options) -> None:
        self.options = options

    async def stream(self, channel: str, cursor: str | None) -> AsyncGenerator[Item, None]:
        headers = {**self.options.headers, "Accept": "text/event-stream"}
        if cursor is not None:
            headers["Last-Event-ID"] = cursor
        timeout = httpx.Timeout(self.options.connect_timeout, read=self.options.read_timeout)
        url = self.options.base_url + channel_path(channel, "stream")
        try:
            async with self.options.http.stream(
                "GET", url, headers=headers, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    error = error_from_response(
                        response.status_code, await response.aread(), response.headers
                    )
                    if error.retryable:
                        raise refused(error)
                    raise error
                yield Opened()
                fields: dict[str, list[str]] = {}
                async for line in sse_lines(response.aiter_bytes()):
                    if line:
                        if not line.startswith(":"):
                            name, _, value = line.partition(":")
                            fields.setdefault(name, []).append(value.removeprefix(" "))
                        continue
                    item = _dispatch(fields)
                    fields = {}
                    if item is not None:
                        yield item
        except httpx.HTTPError as exc:
            raise Dropped(f"stream lost: {exc or type(exc).__name__}") from None
        raise Dropped("stream ended")


def _dispatch(fields: dict[str, list[str]]) -> Item | None:
    kind = (fields.get("event") or [""])[-1]
    data = "\n".join(fields.get("data", []))
    if kind == CONTROL_RESET:
        return ResetSignal((fields.get("id") or [""])[-1] or None)
    if kind == CONTROL_ERROR:
        raise Dropped(f"the server ended the stream: {data}")
    if not data:
        return None  # a `retry:` line or an empty frame
    try:
        obj = json.loads(data)
        if isinstance(obj, dict) and "type" in obj and "channel" in obj:
            return Event.from_json(obj)
    except (ValueError, KeyError, TypeError):
        # Not skipped: dropped, so the stream resumes from the last event it did read.
        raise Dropped("the stream sent something that is no event") from None
    return None
