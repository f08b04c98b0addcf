"""Wait until a URL answers 200, or fail if the process `pid` exits first (used by run_cluster.sh)."""

from __future__ import annotations

import os
import sys
import time
import urllib.request


def main() -> None:
    url, pid = sys.argv[1], int(sys.argv[2])
    deadline = time.monotonic() + float(os.environ.get("WAIT_READY_TIMEOUT", "30"))
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(f"run-cluster: the process serving {url} exited at start-up")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"run-cluster: {url} did not answer in time")


if __name__ == "__main__":
    main()
