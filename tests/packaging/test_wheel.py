"""The wheel, installed where a user would put it: built from a copy of the checkout, installed
into a fresh virtualenv in a temporary folder, and run from a third folder.

To stay cheap the fresh virtualenv is made without pip and gets its dependencies from this test
environment's site-packages through a `.pth` line (the versions this checkout was tested with;
`.pth` files there, such as the editable install of the checkout, are not processed, so neither
`app` nor the checkout's `fourcast` leaks in). The wheel itself is installed with
`pip --python <venv> install --no-deps`: the package, its data and its console script come from
the wheel and nothing else, which the test checks.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import app
from tests.fixtures.server import ROOT, free_port

SOURCES = ("pyproject.toml", "README.md", "app", "templates", "static", "alembic")
PAGES = {"/": "index.js", "/chat/x": "chat.js", "/compare": "compare.js"}
STARTUP = 30.0


@dataclass
class Installed:
    wheel: Path
    venv: Path
    elsewhere: Path

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": f"{self.venv / 'bin'}:/usr/bin:/bin", "HOME": str(self.elsewhere), **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(root / "dist"), str(source)], check=True)
    (wheel,) = (root / "dist").glob("fourcast-*.whl")

    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = (venv / "lib").glob("python3*/site-packages")
    (site / "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = str(venv / "bin" / "python")
    subprocess.run([*pip, "--python", python, "install", "--no-deps", str(wheel)], check=True)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    return Installed(wheel, venv, elsewhere)


def test_the_wheel_ships_fourcast_with_its_data_and_no_generic_package(
    installed: Installed,
) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert {n.split("/")[0] for n in names} == {"fourcast", f"fourcast-{app.__version__}.dist-info"}
    modules = {f"fourcast/{p.relative_to(ROOT / 'app')}" for p in (ROOT / "app").rglob("*.py")}
    assert modules <= names, modules - names  # every module of the checkout's app/
    data = {
        f"fourcast/{p.relative_to(ROOT)}"
        for folder in ("templates", "static", "alembic")
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert data <= names, data - names
    entry_points = zipfile.ZipFile(installed.wheel).read(
        f"fourcast-{app.__version__}.dist-info/entry_points.txt"
    )
    assert b"fourcast = fourcast.cli:main" in entry_points

    probe = subprocess.run(
        [
            installed.bin("python"),
            "-c",
            "import importlib.util, fourcast; "
            "print(fourcast.__file__); print(importlib.util.find_spec('app'))",
        ],
        cwd=installed.elsewhere,
        env=installed.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    location, app_spec = probe.stdout.splitlines()
    assert location.startswith(str(installed.venv))
    assert app_spec == "None"


LAUNCHERS = {
    "fourcast serve": ["fourcast", "serve", "--no-access-log", "--port"],
    "uvicorn fourcast.main:app": [
        "python",
        "-m",
        "uvicorn",
        "fourcast.main:app",
        "--no-access-log",
        "--port",
    ],
}


@pytest.fixture(params=list(LAUNCHERS))
def served(installed: Installed, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    env = installed.env(FOURCAST_DATA_DIR=str(tmp_path / "data"))
    program, *args = LAUNCHERS[request.param]
    with (tmp_path / "serve.log").open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [installed.bin(program), *args, str(port)],
            cwd=installed.elsewhere,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "fourcast serve did not start"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(15)


def test_served_from_another_folder_the_pages_answer_with_their_scripts(
    served: str,
) -> None:
    with httpx.Client(base_url=served) as client:
        for page, script in PAGES.items():
            response = client.get(page)
            assert response.status_code == 200, (page, response.text[:300])
            sources = re.findall(r'<script type="module" src="([^"]+)"', response.text)
            assert f"/static/js/{script}" in sources, (page, sources)
            for src in sources:
                loaded = client.get(src)
                assert loaded.status_code == 200, src
                assert "javascript" in loaded.headers["content-type"]
        assert client.get("/static/css/fourcast.css").status_code == 200


def test_fourcast_migrate_brings_an_empty_database_to_head(
    installed: Installed, tmp_path: Path
) -> None:
    database = tmp_path / "fresh.db"
    done = subprocess.run(
        [installed.bin("fourcast"), "migrate"],
        cwd=installed.elsewhere,
        env=installed.env(FOURCAST_DATABASE_URL=f"sqlite+aiosqlite:///{database}"),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    heads = [p.stem.split("_")[0] for p in (ROOT / "alembic" / "versions").glob("*.py")]
    with sqlite3.connect(database) as db:
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == max(heads)
    assert f"latest revision ({revision})" in done.stdout


def test_python_m_fourcast_names_itself(installed: Installed) -> None:
    """docs/operations.md: `python -m fourcast` is `fourcast serve` installed; its usage and its
    errors name the command typed, not the checkout's `python -m app`."""
    done = subprocess.run(
        [installed.bin("python"), "-m", "fourcast", "--workers", "0"],
        cwd=installed.elsewhere,
        env=installed.env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == "python -m fourcast: --workers must be at least 1, got 0\n", done.stderr
    usage = subprocess.run(
        [installed.bin("python"), "-m", "fourcast", "--help"],
        cwd=installed.elsewhere,
        env=installed.env(),
        capture_output=True,
        text=True,
    )
    assert usage.returncode == 0 and usage.stdout.startswith("usage: python -m fourcast "), usage
    described = " ".join(usage.stdout.split())
    assert "python -m fourcast (the same as fourcast serve)" in described, described
    assert "python -m app" not in described and "uvicorn fourcast.main:app" in described
