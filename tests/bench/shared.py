"""What the benchmark's smoke tests share: the fields every row has, the peers' identities, a
check of rows from a real run, and `python -m bench ab`'s arguments at a tiny scale."""

from __future__ import annotations

import argparse

from bench import scenarios

WHO_NCHAN = {k: scenarios.NCHAN[k] for k in ("server", "launch", "auth", "backend")}
WHO_FLOOR = {k: scenarios.FLOOR[k] for k in ("server", "launch", "auth", "backend")}

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


def check_rows(rows: list[dict[str, object]], who: set[tuple[object, ...]]) -> None:
    assert {(r["server"], r["launch"], r["auth"], r["backend"]) for r in rows} == who
    for r in rows:
        assert set(FIELDS) <= set(r), r
        assert r["loss"] == 0 and r.get("dup", 0) == 0 and r.get("reorder", 0) == 0, r
        assert r["deliveries_per_s"] > 0, r
        assert not r.get("disconnects") and not r.get("errors") and not r.get("publish_errors"), r
        assert not r.get("request_errors"), r
        if r["kind"] == "fanout":
            # Every event reached every subscriber, through this server's own adapter.
            assert r["samples"] == r["subscribers"] * round(r["events_per_s"] * 0.5), r


def ab_args(transport: str, **given: object) -> argparse.Namespace:
    """`python -m bench ab`'s arguments at a tiny scale: the work tree against HEAD, key readers,
    `python -m app` in memory on both sides, but where `given` says otherwise."""
    args: dict[str, object] = {"base": "HEAD", "candidate": "worktree", "transport": transport}
    args |= {"readers": 50, "rate": 2_000, "windows": 1, "seconds": 1.0}
    for side in ("candidate", "base"):
        args |= {f"{side}_server": "fourcast", f"{side}_auth": "key"}
        args |= {f"{side}_backend": "memory", f"{side}_launch": "app"}
    return argparse.Namespace(**(args | given))
