"""The load generator's entry: read the spec, run its scenario kind under uvloop, print the rows."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sys
from typing import Any

import orjson

from bench.clients.websocket_aiohttp import AiohttpSub
from bench.loadgen.fanout import fanout
from bench.loadgen.idle import idle
from bench.loadgen.poll import poll
from bench.loadgen.publish import publish

KINDS = {"fanout": fanout, "idle": idle, "publish": publish, "poll": poll}


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


async def amain(spec: dict[str, Any]) -> list[dict[str, Any]]:
    rows = await asyncio.wait_for(KINDS[spec["kind"]](spec), spec.get("timeout", 600))
    if AiohttpSub.session is not None:
        await AiohttpSub.session.close()
    return rows


def main() -> None:
    spec = orjson.loads(sys.stdin.buffer.read())
    nofile = raise_nofile()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    rows = runner(amain(spec))
    for r in rows:
        r["loadgen_nofile"] = nofile
    sys.stdout.buffer.write(orjson.dumps({"rows": rows}) + b"\n")
    sys.stdout.flush()
