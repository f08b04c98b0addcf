"""Run a suite: a fresh server per scenario (core 0), each scenario in a load-generator process (core 1)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench import report, scenarios
from bench.procstat import ROOT, machine, versions
from bench.server import Server, pin_command

CHANNEL = "public:bench"


def run_loadgen(spec: dict[str, Any], server: Server, core: int | None) -> list[dict[str, Any]]:
    spec = {
        **spec,
        "port": server.port,
        "server_pid": server.pid,
        "api_key": server.api_key,
        "channel": spec.get("channel", CHANNEL),
    }
    cmd = [*pin_command(core), sys.executable, "-m", "bench", "loadgen"]
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        input=orjson.dumps(spec),
        stdout=subprocess.PIPE,
        stderr=None,
        timeout=spec.get("timeout", 600) + 60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}) on {spec['kind']}")
    return orjson.loads(proc.stdout.strip().splitlines()[-1])["rows"]  # type: ignore[no-any-return]


def run_suite(
    suite: str,
    results_dir: Path | None = None,
    *,
    pin: bool = True,
    only: str | None = None,
    server_env: dict[str, str] | None = None,
    latest: bool = True,
    extra: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Path]:
    specs = scenarios.SUITES[suite]()
    if only:
        specs = [
            s for s in specs if only in f"{s['kind']}:{s['transport']}:{s.get('subscribers', '')}"
        ]
    for s in specs:
        s.update(extra or {})
    server_core, loadgen_core = (0, 1) if pin else (None, None)
    started = time.time()
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    settings: dict[str, str] = {}
    shared = suite in scenarios.SHARED_SERVER
    server: Server | None = None
    try:
        for spec in specs:
            label = f"{spec['kind']} {spec['transport']} {spec.get('subscribers', '')}".strip()
            print(f"[bench] {label}", file=sys.stderr, flush=True)
            if server is None:
                server = Server(env=dict(server_env or {}), core=server_core).start()
                settings = server.public_settings
            try:
                rows += run_loadgen(spec, server, loadgen_core)
            except Exception as exc:
                errors.append(f"{label}: {exc}")
                print(f"[bench] {label} failed: {exc}\n{server.log_tail()}", file=sys.stderr)
            if not shared:
                server.stop()
                server = None
    finally:
        if server is not None:
            server.stop()
    data = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "suite": suite,
        "duration_s": round(time.time() - started, 1),
        "results": rows,
        "targets": report.targets(rows),
        "errors": errors,
        "machine": machine(),
        "versions": versions(),
        "settings": {
            "server": settings,
            "server_core": server_core,
            "loadgen_core": loadgen_core,
            "fresh_server_per_scenario": not shared,
            "channel": CHANNEL,
            "scenarios": specs,
        },
    }
    out = report.write(data, results_dir, latest=latest)
    return data, out
