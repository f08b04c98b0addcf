"""Each fourcast row as a ratio to the same load on each peer, measured in the same round."""

from __future__ import annotations

from typing import Any

HEADLINE = {"fanout": "cpu_ms_per_1000", "poll": "cpu_ms_per_1000", "idle": "kib_per_conn"}
"""The figure a row is judged by (lower is better); publish rows by publishes/s (higher)."""
RATIO_FIELDS = ("cpu_ms_per_1000", "kib_per_conn", "p99_ms", "deliveries_per_s")


def same_load(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two rows measured under the same load (subscribers within 5 %, same step), in the same
    round: a ratio compares figures taken minutes apart, never a round apart."""
    return (
        a["kind"] == b["kind"]
        and a["transport"] == b["transport"]
        and a.get("target_deliveries_per_s") == b.get("target_deliveries_per_s")
        and a.get("round", 1) == b.get("round", 1)
        and abs(a.get("subscribers", 0) - b.get("subscribers", 0))
        <= 0.05 * max(a.get("subscribers", 0), 1)
    )


def ratio(a: Any, b: Any) -> float | None:
    if a is None or not b:
        return None
    return round(a / b, 3)


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Give every fourcast row its figures as ratios to the same load on Nchan and on the floor in
    this run: `vs_nchan` / `vs_floor` for the headline figure (CPU-ms per 1,000 deliveries; KiB
    per idle connection; publishes/s), and `ratios` for each figure both sides have."""
    for r in rows:
        if r.get("server", "fourcast") != "fourcast":
            continue
        r["ratios"] = {}
        for peer in ("nchan", "floor"):
            match = next(
                (p for p in rows if p.get("server") == peer and same_load(r, p)),
                None,
            )
            head = HEADLINE.get(r["kind"], "deliveries_per_s")
            r[f"vs_{peer}"] = ratio(r.get(head), match.get(head)) if match else None
            if match:
                r["ratios"][peer] = {
                    k: ratio(r.get(k), match.get(k))
                    for k in RATIO_FIELDS
                    if r.get(k) is not None and match.get(k) is not None
                }
