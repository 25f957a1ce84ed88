"""bench/_report.py: a rerun replaces a section's figures and keeps what a person wrote in it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_report_module():
    spec = importlib.util.spec_from_file_location("bench_report_sections", ROOT / "bench" / "_report.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_rerun_keeps_the_by_hand_subsections_and_nothing_else_of_the_old_figures(tmp_path):
    report = load_report_module()
    report.BENCHMARKS = tmp_path / "BENCHMARKS.md"
    report.BENCHMARKS.write_text(
        "# B\n\n## A\n\nold figures\n\n### Reading it (by hand)\n\nkeep me\n\n### generated\n\ndrop\n\n## C\n\nc\n"
    )
    report.write_section("A", "new figures")
    report.write_section("A", "newer figures")
    text = report.BENCHMARKS.read_text()
    assert "newer figures" in text and "keep me" in text and "## C\n\nc" in text
    assert "old figures" not in text and "new figures" not in text.replace("newer figures", "") and "drop" not in text
    assert text.index("newer figures") < text.index("### Reading it (by hand)") < text.index("## C")
    report.write_section("D", "appended")
    assert report.BENCHMARKS.read_text().rstrip().endswith("appended")
