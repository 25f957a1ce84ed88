"""Write a benchmark's figures into its own section of BENCHMARKS.md."""

from __future__ import annotations

import platform
import re
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["write_section", "machine"]

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEADER = """# Benchmarks

Figures are side-by-side ratios taken in one run on the same machine (these machines are shared
and noisy: compare the ratios, not the absolute times). Each section names the command that
reruns it and rewrites only that section.
"""


def machine() -> str:
    """One line describing where the figures were taken."""
    import os

    return (
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}"
    )


#: A subsection a person wrote (its heading ends so): a rerun keeps it, after the new figures.
_BY_HAND = re.compile(r"^### [^\n]*\(by hand\)\n.*?(?=^##+ |\Z)", re.S | re.M)


def write_section(title: str, body: str) -> None:
    """Replace (or append) the ``## title`` section of BENCHMARKS.md with *body*.

    ``### ... (by hand)`` subsections of the old section (readings of earlier
    runs, what was tried) are kept, after the new body.
    """
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else HEADER
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = f"## {title}\n\n_Measured {stamp} on {machine()}._\n\n{body.strip()}\n\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    old = pattern.search(text)
    if old:
        kept = "".join(m.group(0).rstrip() + "\n\n" for m in _BY_HAND.finditer(old.group(0)))
        text = pattern.sub(lambda _m: section + kept, text)
    else:
        text = text.rstrip() + "\n\n" + section
    BENCHMARKS.write_text(text.rstrip() + "\n")
