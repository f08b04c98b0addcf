"""Autobahn|Testsuite's fuzzing client against the WebSocket stack `/ws` runs on.

`make install-test` installs wstest (Python 2.7 only) under .venv/autobahn. The server runs as
`python -m app` with the testing echo (`FOURCAST_TESTING_ECHO=1`), so every case goes through
the same uvicorn protocol classes as `/ws`. Cases 12 and 13 (compression) are left out:
permessage-deflate is off, and a test below shows it is not negotiated.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import orjson
import pytest
import websockets

from tests.fixtures.server import ROOT, ServerFactory

AUTOBAHN = ROOT / ".venv" / "autobahn"
SITE = AUTOBAHN / "lib" / "python2.7" / "site-packages"
PYTHON2 = sorted(Path.home().glob(".pyenv/versions/2.7*/bin/python2.7")) + sorted(
    Path("/root").glob(".pyenv/versions/2.7*/bin/python2.7")
)
CASES = [f"{n}.*" for n in range(1, 12)]
ACCEPTED = {"OK", "NON-STRICT", "INFORMATIONAL"}
"""Per case, behaviour and close behaviour: NON-STRICT and INFORMATIONAL are not failures."""
RUN = """
import site, sys
site.addsitedir(sys.argv[1])
sys.argv = ["wstest", "-m", "fuzzingclient", "-s", sys.argv[2]]
from autobahntestsuite.wstest import run
run()
"""


def wstest_python() -> Path:
    assert (SITE / "autobahntestsuite").is_dir(), "Autobahn|Testsuite missing: make install-test"
    assert PYTHON2, "no Python 2.7 under ~/.pyenv/versions for Autobahn|Testsuite"
    return PYTHON2[0]


@pytest.mark.timeout(300)
def test_fuzzingclient_cases_1_to_11_pass(start_server: ServerFactory, tmp_path: Path) -> None:
    python2 = wstest_python()
    # 9.* sends messages of up to 16 MiB.
    server = start_server(testing_echo=1, max_ws_message_bytes=16 * 1024 * 1024)
    reports = tmp_path / "reports"
    spec = {
        "outdir": str(reports),
        "servers": [{"agent": "fourcast", "url": f"ws://127.0.0.1:{server.port}/testing/echo"}],
        "cases": CASES,
        "exclude-cases": ["12.*", "13.*"],
        "exclude-agent-cases": {},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    started = time.monotonic()
    run = subprocess.run(
        [str(python2), "-c", RUN, str(SITE), str(tmp_path / "spec.json")],
        cwd=tmp_path,
        capture_output=True,
        timeout=280,
    )
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stdout.decode()[-3000:] + run.stderr.decode()[-3000:]
    results = json.loads((reports / "index.json").read_text())["fourcast"]
    assert len(results) > 250, sorted(results)
    failed = {
        case: (result["behavior"], result["behaviorClose"])
        for case, result in results.items()
        if result["behavior"] not in ACCEPTED or result["behaviorClose"] not in ACCEPTED
    }
    assert not failed, failed
    lenient = sorted(
        (case for case, result in results.items() if result["behavior"] != "OK"),
        key=lambda case: [int(part) for part in case.split(".")],
    )
    print(f"autobahn: {len(results)} cases in {elapsed:.1f} s; not OK but accepted: {lenient}")


async def test_permessage_deflate_is_not_negotiated(start_server: ServerFactory) -> None:
    server = start_server(testing_echo=1)
    # The client offers permessage-deflate (websockets does by default).
    async with websockets.connect(server.ws_url, subprotocols=["fourcast.v1"]) as ws:  # type: ignore[list-item]
        assert orjson.loads(await ws.recv())["op"] == "welcome"
        assert ws.response is not None
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
    echo_url = server.ws_url.replace("/ws", "/testing/echo")
    async with websockets.connect(echo_url, compression="deflate") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        assert ws.response is not None
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None


async def test_echo_is_mounted_only_with_its_setting(start_server: ServerFactory) -> None:
    server = start_server()
    echo_url = server.ws_url.replace("/ws", "/testing/echo")
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(echo_url):
            pass
