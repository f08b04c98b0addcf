"""Run a suite: a fresh server per scenario (core 0), each scenario in a load-generator process (core 1)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from bench import report, scenarios, targets
from bench.paired import run_paired
from bench.procstat import ROOT, git_rev, machine, versions
from bench.ratios import add_ratios
from bench.servers import Process, Server, export_head, make_server, nice_command, pin_command

CHANNEL = "public:bench"
GUEST_CHANNEL = "room:bench"  # the chat page's case: signed-in people reading a room
PEER_CHANNEL = "bench"


WHO = {**scenarios.FOURCAST, "round": 1}
"""The fields every result row carries to say what was measured (the spec's, else these)."""


def channel_for(spec: dict[str, Any]) -> str:
    if spec.get("server", "fourcast") == "nchan":
        return PEER_CHANNEL
    return GUEST_CHANNEL if spec.get("auth") == "guest" else CHANNEL


def server_key(spec: dict[str, Any]) -> tuple[str, str, str]:
    return (spec.get("server", "fourcast"), spec.get("launch", ""), spec.get("backend", ""))


def run_loadgen(
    spec: dict[str, Any], server: Process, core: int | None, nice: int = 0
) -> list[dict[str, Any]]:
    redis = server.redis if isinstance(server, Server) else None
    spec = {
        **spec,
        "port": server.port,
        "server_pid": server.pid,
        "server_core": server.core,
        "redis_pid": redis.pid if redis is not None else None,
        "api_key": server.api_key,
        "channel": spec.get("channel", channel_for(spec)),
    }
    cmd = [*nice_command(nice), *pin_command(core), sys.executable, "-m", "bench", "loadgen"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        stdout, _ = proc.communicate(orjson.dumps(spec), timeout=spec.get("timeout", 600) + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}) on {spec['kind']}")
    return orjson.loads(stdout.strip().splitlines()[-1])["rows"]  # type: ignore[no-any-return]


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def start_profile(server: Process, label: str, out: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("[bench] py-spy not found: pip install py-spy", file=sys.stderr)
        return None
    out.mkdir(parents=True, exist_ok=True)
    name = label.replace(" ", "-")
    cmd = [
        *pin_command(1),
        spy,
        "record",
        "-p",
        str(server.pid),
        "-o",
        str(out / f"profile-{name}.svg"),
        "-r",
        "200",
        "--nonblocking",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profile(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        spy.kill()


def run_suite(
    suite: str,
    results_dir: Path | None = None,
    *,
    pin: bool = True,
    only: str | None = None,
    server_env: dict[str, str] | None = None,
    latest: bool = True,
    extra: dict[str, Any] | None = None,
    profile_dir: Path | None = None,
    nice: int = 0,
    source: str = "worktree",
    rounds: int = 1,
) -> tuple[dict[str, Any], Path]:
    """Run `suite`, then `rounds - 1` more rounds of its reference loads (`scenarios.rerun`);
    with `profile_dir`, py-spy records the server during each scenario (an SVG
    flame graph per scenario; py-spy runs on the load generator's core, so those numbers are off).
    `only`: comma-separated substrings of `scenarios.key` (kind:transport:subs:server:auth:...)."""
    specs = scenarios.SUITES[suite]()
    if only:
        wanted = only.split(",")
        specs = [s for s in specs if any(w in scenarios.key(s) for w in wanted)]
    again = [r for r in map(scenarios.rerun, specs) if r is not None]
    specs += [{**spec, "round": n} for n in range(2, rounds + 1) for spec in again]
    return run_specs(
        specs,
        results_dir,
        suite=suite,
        shared=suite in scenarios.SHARED_SERVER,
        pin=pin,
        server_env=server_env,
        latest=latest,
        extra=extra,
        profile_dir=profile_dir,
        nice=nice,
        source=source,
    )


def run_specs(
    specs: list[dict[str, Any]],
    results_dir: Path | None = None,
    *,
    suite: str = "custom",
    shared: bool = True,
    pin: bool = False,
    server_env: dict[str, str] | None = None,
    latest: bool = False,
    extra: dict[str, Any] | None = None,
    profile_dir: Path | None = None,
    nice: int = 0,
    source: str = "worktree",
) -> tuple[dict[str, Any], Path]:
    """Run these scenario specs; `shared`: consecutive scenarios on the same server share it."""
    for s in specs:
        s.update(extra or {})
    server_core, loadgen_core = (0, 1) if pin else (None, None)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)  # stop the server and load generator too
    started = time.time()
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    settings: dict[str, str] = {}
    server: Process | None = None
    running: tuple[str, str, str] | None = None
    src_dir = None if source == "worktree" else export_head(source)
    paired: list[dict[str, Any]] = []
    try:
        for spec in specs:
            label = scenarios.label(spec)
            print(f"[bench] {label}", file=sys.stderr, flush=True)
            if spec["kind"] == "paired":  # its own two servers, side by side
                if server is not None:
                    server.stop()
                    server, running = None, None
                try:
                    paired.append(run_paired(spec, source, nice))
                except Exception as exc:
                    errors.append(f"{label}: {exc}")
                continue
            if server is not None and running != server_key(spec):
                server.stop()
                server = None
            if server is None:
                try:
                    server = make_server(
                        spec,
                        env=dict(server_env or {}),
                        core=server_core,
                        nice=nice,
                        source=src_dir,
                    ).start()
                except RuntimeError as exc:
                    errors.append(f"{label}: server did not start: {str(exc)[-600:]}")
                    print(f"[bench] {label}: server did not start:\n{exc}", file=sys.stderr)
                    continue
                running = server_key(spec)
                if isinstance(server, Server):
                    settings = server.public_settings
            spy = start_profile(server, label, profile_dir) if profile_dir else None
            try:
                rows += [
                    {**r, **{k: spec.get(k, v) for k, v in WHO.items()}, **server.describe()}
                    for r in run_loadgen(spec, server, loadgen_core, nice)
                ]
            except Exception as exc:
                errors.append(f"{label}: {exc}")
                print(f"[bench] {label} failed: {exc}\n{server.log_tail()}", file=sys.stderr)
            if spy is not None:
                stop_profile(spy)
            if not shared:
                server.stop()
                server = None
    finally:
        if server is not None:
            server.stop()
        if src_dir is not None:
            shutil.rmtree(src_dir, ignore_errors=True)
    vers = versions()
    if source != "worktree":
        vers["fourcast"] = git_rev(source)
    add_ratios(rows)
    data = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(started)),  # UTC
        "suite": suite,
        "duration_s": round(time.time() - started, 1),
        "results": [r for r in rows if r["round"] == 1],
        # Later rounds' rows apart: readers of `results` (the /compare page) see one row a load.
        "later_rounds": [r for r in rows if r["round"] > 1],
        # Any window with other work on the machine: such a run's figures are not results.
        "contended": any(r.get("contended") for r in rows),
        "paired": paired,
        "targets": targets.over_rounds(rows, paired),
        "errors": errors,
        "machine": machine(),
        "versions": vers,
        "settings": {
            "server": settings,
            "server_core": server_core,
            "loadgen_core": loadgen_core,
            "fresh_server_per_scenario": not shared,
            "nice": nice,
            "server_source": source,
            "channel": CHANNEL,
            "scenarios": specs,
        },
    }
    out = report.write(data, results_dir, latest=latest)
    return data, out
