"""The benchmark harness end to end at a tiny scale, against a real server, so it cannot rot:
the smoke suite's report, fourcast's other cases, and the ratios and targets a report judges."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

from bench import scenarios, targets
from bench.ratios import add_ratios
from bench.runner import run_specs, run_suite
from tests.bench.shared import FIELDS, check_rows


@pytest.mark.timeout(150)
def test_smoke_suite_writes_a_well_formed_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "XST-5:30")  # a machine not on UTC (a POSIX rule: no tzdata)
    time.tzset()
    try:
        data, out = run_suite("smoke", tmp_path, pin=False, rounds=2)
    finally:
        monkeypatch.undo()
        time.tzset()

    assert data["errors"] == []
    latest = orjson.loads((tmp_path / "latest.json").read_bytes())
    assert latest["results"] == orjson.loads(orjson.dumps(data["results"]))
    assert {"cpu_model", "cores", "kernel"} <= set(latest["machine"])
    assert {"python", "fourcast", "uvicorn"} <= set(latest["versions"])
    created = datetime.strptime(latest["created"], "%Y-%m-%dT%H:%M:%S%z")
    assert created.utcoffset() == timedelta(0)  # UTC, whatever the machine's zone
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

    # The second round measured the reference loads again (publishing is measured once), and
    # each target gives both rounds' values beside the median it is judged on.
    later = latest["later_rounds"]
    assert {r["round"] for r in rows} == {1} and {r["round"] for r in later} == {2}
    assert {(r["kind"], r["transport"]) for r in later} == {
        (r["kind"], r["transport"]) for r in rows if r["kind"] != "publish"
    }
    publishes = next(t for t in latest["targets"] if t["target"].startswith("durable REST"))
    first, second = publishes["rounds"]
    assert first > 0 and second is None and publishes["measured"] == first
    assert "## Round 2: the reference loads again" in (out / "results.md").read_text()


@pytest.mark.timeout(120)
def test_guest_readers_redis_and_plain_uvicorn_run(tmp_path: Path) -> None:
    """Signed-in readers (a session each) on the Redis backend, and plain `uvicorn app.main:app`."""
    specs = [
        s
        for s in scenarios.variants_smoke()
        if ((s["backend"], s["auth"]) == ("redis", "guest") and s["transport"] != "shortpoll")
        or (s["launch"] == "uvicorn" and s["transport"] == "longpoll")
    ]
    data, _out = run_specs(specs, tmp_path)

    assert data["errors"] == []
    rows = data["results"]
    check_rows(
        rows,
        {("fourcast", "python -m app", "guest", "redis"), ("fourcast", "uvicorn", "key", "memory")},
    )
    assert all(r["redis_cpu_ms_per_1000"] is not None for r in rows if r["backend"] == "redis")


def test_ratios_and_targets_compare_rows_of_the_same_load() -> None:
    def row(server: str, transport: str, cpu: float, **who: str) -> dict[str, object]:
        kind = "fanout" if transport in ("websocket", "sse") else "poll"
        return {
            "server": server,
            "launch": who.get("launch", "python -m app" if server == "fourcast" else "x"),
            "auth": who.get("auth", "key"),
            "backend": who.get("backend", "memory"),
            "kind": kind,
            "transport": transport,
            "subscribers": 1000 if kind == "fanout" else 500,
            "target_deliveries_per_s": 20_000 if kind == "fanout" else None,
            "cpu_ms_per_1000": cpu,
            "p99_ms": 10.0,
            "deliveries_per_s": 20_000.0,
            "ok": True,
        }

    rows = [
        row("fourcast", "websocket", 9.0),
        row("nchan", "websocket", 7.5),
        row("floor", "websocket", 12.0),
        row("fourcast", "websocket", 9.9, auth="guest"),
        row("fourcast", "longpoll", 30.0),
        row("nchan", "longpoll", 20.0),
    ]
    add_ratios(rows)
    assert rows[0]["vs_nchan"] == 1.2 and rows[0]["vs_floor"] == 0.75
    assert rows[0]["ratios"]["nchan"]["p99_ms"] == 1.0
    assert rows[4]["vs_nchan"] == 1.5 and rows[4]["vs_floor"] is None
    assert "vs_nchan" not in rows[1]

    found = {t["target"]: t for t in targets.targets(rows)}
    ws = found["python -m app, key readers: websocket CPU vs Nchan"]
    assert (ws["measured"], ws["met"], ws["margin_pct"]) == (1.2, False, -20.0)
    lp = found["python -m app, key readers: longpoll CPU vs Nchan"]
    assert (lp["measured"], lp["met"], lp["margin_pct"]) == (1.5, False, -25.0)
    guest = found["guest readers vs key readers: websocket CPU"]
    assert (guest["measured"], guest["met"]) == (1.1, True)
    assert found["python -m app, key readers: sse CPU vs Nchan"]["met"] is None


FOURCAST_WS = {
    "server": "fourcast",
    "launch": "python -m app",
    "auth": "key",
    "backend": "memory",
    "kind": "fanout",
    "transport": "websocket",
    "subscribers": 1000,
    "cpu_ms_per_1000": 7.0,
    "p99_ms": 10.0,
    "ok": True,
}


@pytest.mark.parametrize(
    ("delivered", "p99", "sustained"),
    [
        (99_996.0, 18.8, 100_000.0),
        (99_900.0, 18.8, 100_000.0),  # 0.1 % short: the edges
        (99_899.0, 18.8, 99_899.0),  # further short: what it delivered
        (98_500.0, 18.8, 98_500.0),
        (100_000.0, 150.0, 20_000.0),
    ],
)
def test_the_ladder_counts_a_step_that_delivered_its_offered_rate(
    delivered: float, p99: float, sustained: float
) -> None:
    """A step offered 100k/s whose window counted all but the events at its edges sustained
    100k/s; one that fell further short sustained what it delivered; one whose p99 reached
    100 ms does not count (the 20k/s step below it does)."""
    rows = [
        {**FOURCAST_WS, "target_deliveries_per_s": 20_000, "deliveries_per_s": 20_000.0},
        {
            **FOURCAST_WS,
            "target_deliveries_per_s": 100_000,
            "deliveries_per_s": delivered,
            "p99_ms": p99,
        },
    ]
    found = {t["target"]: t for t in targets.targets(rows)}
    top = found["WebSocket deliveries/s to 1,000 readers, p99 < 100 ms, no loss"]
    assert top["measured"] == sustained


def test_over_rounds_judges_the_median_of_ratios_taken_within_each_round() -> None:
    def row(server: str, cpu: float, n: int, **who: str) -> dict[str, object]:
        return {
            "server": server,
            "launch": "python -m app" if server == "fourcast" else "x",
            "auth": who.get("auth", "key"),
            "backend": "memory",
            "kind": "poll",
            "transport": "longpoll",
            "subscribers": 500,
            "cpu_ms_per_1000": cpu,
            "round": n,
        }

    # Round 2 ran on a slower machine: both sides cost more, the ratio barely moved.
    rows = [
        row("fourcast", 30.0, 1),
        row("nchan", 20.0, 1),
        row("fourcast", 26.0, 1, auth="guest"),
        row("fourcast", 60.0, 2),
        row("nchan", 48.0, 2),
        row("fourcast", 66.0, 2, auth="guest"),
        row("fourcast", 42.0, 3),
        row("nchan", 30.0, 3),
    ]
    add_ratios(rows)
    assert [r["vs_nchan"] for r in rows if r["server"] == "fourcast" and r["auth"] == "key"] == [
        1.5,
        1.25,
        1.4,
    ]
    found = {t["target"]: t for t in targets.over_rounds(rows)}
    lp = found["python -m app, key readers: longpoll CPU vs Nchan"]
    assert lp["rounds"] == [1.5, 1.25, 1.4]
    assert (lp["measured"], lp["met"], lp["margin_pct"]) == (1.4, False, -16.7)
    guest = found["guest readers vs key readers: longpoll CPU"]
    # Measured in two rounds only: the median of those two (0.867 and 1.1).
    assert guest["rounds"] == [0.867, 1.1, None]
    assert (guest["measured"], guest["met"]) == (0.984, True)
    assert found["python -m app, key readers: websocket CPU vs Nchan"]["met"] is None
    # A target only some rounds have (Redis guests, measured in round 3 alone) keeps its place
    # by name, and the targets around it keep theirs.
    rows += [row("fourcast", 44.1, 3, auth="guest")]
    rows += [{**row("fourcast", 52.92, 3, auth="guest"), "backend": "redis"}]
    found = {t["target"]: t for t in targets.over_rounds(rows)}
    redis = found["Redis vs memory (guest readers): longpoll CPU per node"]
    assert (redis["rounds"], redis["measured"]) == ([None, None, 1.2], 1.2)
    assert found["python -m app, key readers: longpoll CPU vs Nchan"]["rounds"] == [1.5, 1.25, 1.4]


def test_a_case_compared_side_by_side_is_judged_on_that_comparison() -> None:
    """Rows minutes apart said guests cost 1.4x on long poll; served side by side they cost
    1.1x: the target is judged on the comparison, and the rows' ratio stays beside it."""
    rows = [
        {
            "server": "fourcast",
            "launch": "python -m app",
            "auth": auth,
            "backend": "memory",
            "kind": "poll",
            "transport": "longpoll",
            "subscribers": 500,
            "cpu_ms_per_1000": cpu,
            "round": 1,
        }
        for auth, cpu in (("key", 30.0), ("guest", 42.0))
    ]
    add_ratios(rows)
    side = {"ratio": 1.1, "windows": [1.09, 1.1, 1.12]}
    paired = [
        {**side, "kind": "paired", "transport": "longpoll", "vs": "guest"},
        {**side, "kind": "paired", "transport": "longpoll", "vs": "redis guest", "ratio": 1.35},
    ]
    found = {t["target"]: t for t in targets.over_rounds(rows, paired)}
    guest = found["guest readers vs key readers: longpoll CPU"]
    assert (guest["measured"], guest["met"], guest["how"]) == (1.1, True, "side by side")
    assert guest["rounds"] == [1.4] and guest["rows_measured"] == 1.4
    assert guest["windows"] == [1.09, 1.1, 1.12]
    # A case no row measured gets its target from the comparison alone, at its own limit.
    redis = found["Redis vs memory (guest readers): longpoll CPU per node"]
    assert (redis["measured"], redis["limit_value"], redis["met"]) == (1.35, 1.3, False)
    assert targets.over_rounds(rows)[-1]["target"] != redis["target"]


def test_the_peers_compared_side_by_side_judge_their_own_targets() -> None:
    """A comparison with Nchan judges `python -m app`'s target against Nchan at that transport's
    limit (long poll 1.2x, short poll 0.5x); one of plain uvicorn with the floor app judges the
    plain-uvicorn target (0.8x)."""
    side = {"kind": "paired", "windows": [1.0]}
    paired = [
        {**side, "transport": "longpoll", "vs": "nchan", "ratio": 1.15},
        {**side, "transport": "shortpoll", "vs": "nchan", "ratio": 0.55},
        {**side, "transport": "shortpoll", "vs": "uvicorn", "ratio": 0.75},
    ]
    found = {t["target"]: t for t in targets.over_rounds([], paired)}
    lp = found["python -m app, key readers: longpoll CPU vs Nchan"]
    assert (lp["limit_value"], lp["met"], lp["how"]) == (1.2, True, "side by side")
    sp = found["python -m app, key readers: shortpoll CPU vs Nchan"]
    assert (sp["limit_value"], sp["met"]) == (0.5, False)
    uv = found["uvicorn app.main:app vs floor: shortpoll CPU"]
    assert (uv["limit_value"], uv["met"], uv["how"]) == (0.8, True, "side by side")
