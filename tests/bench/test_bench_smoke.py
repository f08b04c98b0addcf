"""The benchmark harness end to end at a tiny scale, against a real server, so it cannot rot."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bench.runner import run_suite

FIELDS = (
    "transport",
    "scenario",
    "subscribers",
    "deliveries_per_s",
    "p50_ms",
    "p99_ms",
    "loss",
    "cpu_ms_per_1000",
    "rss_mb",
    "client_bound",
)


@pytest.mark.timeout(90)
def test_smoke_suite_writes_a_well_formed_report(tmp_path: Path) -> None:
    data, out = run_suite("smoke", tmp_path, pin=False)

    assert data["errors"] == []
    latest = orjson.loads((tmp_path / "latest.json").read_bytes())
    assert latest["results"] == orjson.loads(orjson.dumps(data["results"]))
    assert {"cpu_model", "cores", "kernel"} <= set(latest["machine"])
    assert {"python", "fourcast", "uvicorn"} <= set(latest["versions"])
    assert latest["created"]
    assert (tmp_path / "latest.md").read_text().startswith("# fourcast benchmark")
    assert (out / "results.json").exists() and (out / "results.md").exists()
    assert (tmp_path / "latest_fanout_cpu.png").stat().st_size > 1000

    rows = latest["results"]
    assert {(r["kind"], r["transport"]) for r in rows} == {
        ("fanout", "websocket"),
        ("fanout", "sse"),
        ("publish", "rest"),
        ("poll", "shortpoll"),
        ("poll", "longpoll"),
    }
    for r in rows:
        assert set(FIELDS) <= set(r), r
        assert isinstance(r["client_bound"], bool)
        assert r["loss"] == 0, r
        assert r.get("dup", 0) == 0 and r.get("reorder", 0) == 0, r
        assert r["deliveries_per_s"] > 0, r
        assert r["p50_ms"] is not None and r["p99_ms"] >= r["p50_ms"], r
        assert r["rss_mb"] > 10, r
        assert not r.get("disconnects") and not r.get("errors") and not r.get("publish_errors"), r
        assert isinstance(r["ok"], bool)  # latency may miss its bound on a busy machine
    for r in rows:
        if r["kind"] == "fanout":
            assert r["subscribers"] == 20
            # 20 subscribers x 50 events/s: every event reached every subscriber.
            assert r["samples"] == 20 * round(r["events_per_s"] * 1.3)
