"""The benchmark's peers at a tiny scale, really started: nginx with Nchan, the floor app and
the bare server, measured by the runner, side by side by `python -m bench ab`, and polled by
`python -m bench requestcost`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from bench import ab, requestcost
from bench.runner import run_suite
from tests.bench.shared import WHO_FLOOR, WHO_NCHAN, ab_args, check_rows


@pytest.mark.timeout(120)
def test_peer_adapters_measure_a_real_nchan_and_the_floor(tmp_path: Path) -> None:
    """nginx with Nchan and the floor app, really started; each transport's adapter delivers
    every event exactly once, and each row says which server it measured."""
    data, _out = run_suite("peers-smoke", tmp_path, pin=False, latest=False)

    assert data["errors"] == []
    rows = data["results"]
    check_rows(rows, {tuple(WHO_NCHAN.values()), tuple(WHO_FLOOR.values())})
    for server in ("nchan", "floor"):
        mine = [r for r in rows if r["server"] == server]
        assert {(r["kind"], r["transport"]) for r in mine} == {
            ("fanout", "websocket"),
            ("fanout", "sse"),
            ("poll", "shortpoll"),
            ("poll", "longpoll"),
            ("publish", "rest"),
        }
    nchan_ws = next(r for r in rows if r["server"] == "nchan" and r["transport"] == "websocket")
    # nginx's worker is a child of the master: its CPU and memory are counted.
    assert nchan_ws["cpu_ms_per_1000_process"] is not None and nchan_ws["rss_mb"] > 1


@pytest.mark.timeout(90)
@pytest.mark.parametrize("transport", ["websocket", "sse", "longpoll", "shortpoll"])
def test_ab_serves_the_peers_side_by_side(transport: str) -> None:
    """`python -m bench ab` with the peers as its sides (the floor app against Nchan here; `make
    bench` sets each beside fourcast): their readers subscribe their own way and get events
    (`compare` fails a run where any reader got none), and each peer's CPU is counted (nginx's
    master and worker)."""
    args = ab_args(transport, candidate_server="floor", base_server="nchan", seconds=2.0)
    result = asyncio.run(ab.compare(args))
    assert 0 < result["ratio"] < 100
    assert result["candidate_cpu_ms_per_1000"][0] > 0 and result["base_cpu_ms_per_1000"][0] > 0


@pytest.mark.timeout(120)
def test_requestcost_polls_fourcast_nchan_and_the_bare_server_alike() -> None:
    """`python -m bench requestcost` at a tiny scale: each server is really polled and answers
    every poll with its event (`measure` fails a server with a wrong answer or none), and each
    one's CPU is counted under the hot load."""
    args = argparse.Namespace(seconds=1.5, hot_connections=2, cold_connections=10)
    result = asyncio.run(requestcost.run(args))
    assert set(result) == {"hot", "cold"}
    for load in result.values():
        assert set(load) == {"fourcast", "nchan", "bare"}
    assert all(cost > 0 for cost in result["hot"].values())
    assert "| hot |" in requestcost.table(result)
