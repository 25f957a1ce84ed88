"""The documentation names only things that exist."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
#: `wsreplay.a.b` inside backticks (a call's parentheses and arguments may follow)
NAME = re.compile(r"`(wsreplay(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
#: Names that are not Python: the schema metadata keys of capture files (wsreplay.schema.VERSION_KEY, and
#: wsreplay.store.layout.LAYOUT_KEY of a compacted capture's files)
NOT_PYTHON = {"wsreplay.format_version", "wsreplay.layout"}


def test_the_metadata_key_named_in_the_docs_is_the_one_written():
    from wsreplay.schema import VERSION_KEY
    from wsreplay.store.layout import LAYOUT_KEY

    assert {name.encode() for name in NOT_PYTHON} == {VERSION_KEY, LAYOUT_KEY}


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def _names() -> list[tuple[str, str]]:
    found = set()
    for doc in DOCS:
        for name in NAME.findall(doc.read_text()):
            if name not in NOT_PYTHON:
                found.add((doc.name, name))
    return sorted(found)


@pytest.mark.parametrize(("doc", "name"), _names())
def test_every_wsreplay_name_in_the_docs_exists(doc, name):
    try:
        _resolve(name)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"{doc} names {name}, which does not exist ({exc})")
