"""Where the templates, static files and migrations are, found from the package, never the cwd.

Installed, they sit inside the package (`fourcast/templates`); in a checkout, beside it at the top
level (`templates/` next to `app/`). The first folder that exists wins.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def resource(name: str) -> Path:
    """The folder or file `name` (templates, static, alembic) for this install: inside the
    package if there, else the checkout's (which may be missing from a partial copy)."""
    inside = PACKAGE_DIR / name
    return inside if inside.exists() else PACKAGE_DIR.parent / name


def templates_dir() -> Path:
    return resource("templates")


def static_dir() -> Path:
    return resource("static")


def migrations_dir() -> Path:
    return resource("alembic")
