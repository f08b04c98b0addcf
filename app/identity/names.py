"""Display names as people see them: NFC, with no control, format (bidi overrides, zero-width
characters) or private-use characters, and runs of whitespace folded to one space, so a name
cannot reorder or hide text around it, nor pass for another by invisible differences."""

from __future__ import annotations

import unicodedata

MAX_NAME = 40
DROPPED = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})


def normalise_name(raw: str) -> str:
    """The name to show ("" when nothing printable is left)."""
    text = unicodedata.normalize("NFC", raw)
    kept = [
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in DROPPED
    ]
    return " ".join("".join(kept).split())[:MAX_NAME]
