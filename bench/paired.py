"""`make bench`'s side-by-side comparisons: a scenario of kind `paired` (scenarios.PAIRED) run by
`python -m bench ab`, both cases served at once from the revision under test."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson

from bench.procstat import ROOT
from bench.scenarios import PAIRED
from bench.servers import nice_command


def ab_command(spec: dict[str, Any], source: str) -> list[str]:
    candidate, base = PAIRED[spec["vs"]]
    argv = ["--json", "--base", source, "--candidate", source, "--transport", spec["transport"]]
    for side, who in (("candidate", candidate), ("base", base)):
        argv += [f"--{side}-server", who.get("server", "fourcast")]
        argv += [f"--{side}-auth", who.get("auth", "key")]
        argv += [f"--{side}-backend", who.get("backend", "memory")]
        argv += [f"--{side}-launch", "uvicorn" if who.get("launch") == "uvicorn" else "app"]
    argv += ["--windows", str(spec["windows"]), "--seconds", str(spec["seconds"])]
    for scale in ("readers", "rate"):  # a smaller load than ab's reference (tests)
        if scale in spec:
            argv += [f"--{scale}", str(spec[scale])]
    return [sys.executable, "-m", "bench", "ab", *argv]


def run_paired(spec: dict[str, Any], source: str, nice: int = 0) -> dict[str, Any]:
    """The comparison's result row: `ratio` (candidate / base, the median of its `windows`)
    and each side's CPU-ms per 1,000 deliveries per window."""
    cmd = [*nice_command(nice), *ab_command(spec, source)]
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, timeout=spec["timeout"])
    *progress, last = done.stdout.decode(errors="replace").strip().splitlines() or [""]
    for line in progress:  # its windows, in the run's log
        print(f"[ab] {line}", file=sys.stderr, flush=True)
    if done.returncode != 0:
        raise RuntimeError(f"bench ab failed ({done.returncode}) on {spec['transport']}")
    result: dict[str, Any] = orjson.loads(last)
    candidate, base = PAIRED[spec["vs"]]
    return {
        "kind": "paired",
        "transport": spec["transport"],
        "vs": spec["vs"],
        "candidate": candidate,
        "base": base,
        **result,
    }
