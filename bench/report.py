"""Results as JSON, a Markdown table and PNG charts; the newest also as `latest.*`."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import orjson

from bench.charts import CHARTS, charts
from bench.markdown import markdown
from bench.procstat import ROOT

RESULTS = ROOT / "bench" / "results"


def write(data: dict[str, Any], results_dir: Path | None = None, *, latest: bool = True) -> Path:
    """Write `<results_dir>/<timestamp>/results.{json,md}` + charts, and `latest.*` beside them."""
    base = Path(results_dir) if results_dir is not None else RESULTS
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = base / f"{stamp}-{data['suite']}"
    out.mkdir(parents=True, exist_ok=True)
    data["charts"] = charts(data, out)
    (out / "results.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    (out / "results.md").write_text(markdown(data))
    if latest:
        (base / "latest.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        (base / "latest.md").write_text(markdown(data, prefix="latest_"))
        for c in CHARTS:
            src = out / f"{c}.png"
            if src.exists():
                shutil.copyfile(src, base / f"latest_{c}.png")
    return out
