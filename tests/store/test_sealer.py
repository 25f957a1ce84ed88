"""The sealing child: exit status and one line on stderr for what it cannot do."""

from __future__ import annotations

import subprocess
import sys

from wsreplay.store.sealer import main


def test_usage_without_two_paths(capsys):
    assert main([]) == 2
    assert capsys.readouterr().err.strip().startswith("usage: python -m wsreplay.store.sealer")


def test_a_missing_segment_is_one_line_and_status_1(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "wsreplay.store.sealer", str(tmp_path / "gone.arrows"), str(tmp_path / "x.parquet")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "gone.arrows" in done.stderr
    assert not list(tmp_path.iterdir())
