"""`python -m bench run --suite quick|full|smoke`; `python -m bench ab` compares two versions side by
side (bench/ab.py); `python -m bench requestcost` what one poll costs fourcast, Nchan and a bare
server (bench/requestcost.py); `python -m bench loadgen` is the worker process."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.scenarios import SUITES


def main() -> None:
    if sys.argv[1:2] == ["ab"]:
        from bench.ab import main as ab_main

        ab_main(sys.argv[2:])
        return
    if sys.argv[1:2] == ["requestcost"]:
        from bench.requestcost import main as requestcost_main

        requestcost_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a suite against a server it starts itself")
    run.add_argument("--suite", choices=tuple(SUITES), default="quick")
    run.add_argument(
        "--results", type=Path, default=None, help="results folder (default bench/results)"
    )
    run.add_argument(
        "--only", default=None, help="run scenarios whose kind:transport:subs contains this"
    )
    run.add_argument("--no-pin", action="store_true", help="do not pin server and load generator")
    run.add_argument("--no-latest", action="store_true", help="do not update latest.*")
    run.add_argument("--ws-client", choices=("picows", "aiohttp"), default="picows")
    run.add_argument(
        "--publish-via",
        choices=("rest", "websocket"),
        default="rest",
        help="how events are published: pipelined REST POSTs (every server; default) or fourcast's "
        "WebSocket publish op (fourcast only; the peers still get REST)",
    )
    run.add_argument(
        "--profile", action="store_true", help="py-spy flame graph of the server per scenario"
    )
    run.add_argument(
        "--source",
        default="worktree",
        help="server code: the work tree (default), or a git revision (e.g. HEAD) exported to a temp dir",
    )
    run.add_argument(
        "--nice", type=int, default=0, help="nice value for server and load generator (-5: root)"
    )
    run.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure the reference loads this many times in all; targets use the median",
    )
    sub.add_parser("ab", help="two versions side by side under one load (bench/ab.py)")
    sub.add_parser("requestcost", help="what one poll costs each server (bench/requestcost.py)")
    sub.add_parser("loadgen", help="(internal) run one scenario spec from stdin")
    args = parser.parse_args()
    if args.command == "loadgen":
        from bench.loadgen.main import main as loadgen_main

        loadgen_main()
        return
    from bench.runner import run_suite

    data, out = run_suite(
        args.suite,
        args.results,
        pin=not args.no_pin,
        only=args.only,
        latest=not args.no_latest,
        extra={"ws_client": args.ws_client, "publish_via": args.publish_via},
        profile_dir=Path("bench/results/profiles") if args.profile else None,
        nice=args.nice,
        source=args.source,
        rounds=args.rounds,
    )
    print(Path(out / "results.md").read_text())
    print(f"[bench] results in {out}", file=sys.stderr)
    if data["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
