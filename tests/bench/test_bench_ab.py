"""fourcast compared side by side at a tiny scale: `python -m bench ab` serving two versions, and
the runner's `paired` scenario that runs it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench import ab, scenarios
from bench.runner import run_specs
from tests.bench.shared import ab_args


@pytest.mark.timeout(120)
def test_the_runner_compares_a_case_side_by_side(tmp_path: Path) -> None:
    """A `paired` scenario runs `python -m bench ab` from the runner: guests against key
    readers at a tiny scale, its result in the report and in the target it measures."""
    spec = {**scenarios.paired("longpoll", "guest", windows=1, seconds=1.0), "readers": 50}
    data, out = run_specs([{**spec, "rate": 500}], tmp_path)

    assert data["errors"] == []
    (result,) = data["paired"]
    assert result["candidate"] == {"auth": "guest"} and result["base"] == {"auth": "key"}
    assert 0 < result["ratio"] < 100 and result["windows"] == [result["ratio"]]
    assert len(result["candidate_cpu_ms_per_1000"]) == len(result["base_cpu_ms_per_1000"]) == 1
    found = {t["target"]: t for t in data["targets"]}
    judged = found["guest readers vs key readers: longpoll CPU"]
    assert (judged["measured"], judged["how"]) == (result["ratio"], "side by side")
    assert "## Side by side" in (out / "results.md").read_text()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("transport", ["websocket", "sse", "longpoll", "shortpoll"])
def test_ab_serves_two_versions_side_by_side_and_compares_them(transport: str) -> None:
    """`python -m bench ab` at a tiny scale: both servers run, every reader gets events, and a
    ratio of their costs comes out (the same code on both sides here; one side a guest's, on
    Redis, or plain `uvicorn app.main:app`, by transport)."""
    args = ab_args(
        transport,
        candidate_auth="guest" if transport == "longpoll" else "key",
        base_backend="redis" if transport == "sse" else "memory",
        candidate_launch="uvicorn" if transport in ("websocket", "shortpoll") else "app",
    )
    result = asyncio.run(ab.compare(args))
    assert 0 < result["ratio"] < 100 and result["windows"] == [result["ratio"]]
