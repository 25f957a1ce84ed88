"""``wsreplay compact``."""

from __future__ import annotations

import wsreplay
from wsreplay.cli import main
from wsreplay.sim import Scenario, simulate_virtual
from wsreplay.store import bucket_files


def test_compact_prints_what_it_did_and_load_reads_the_same(tmp_path, capsys):
    simulate_virtual(Scenario.generate(outposts=5, duration=20.0, seed=2), out=tmp_path / "c", save_truth=False)
    rows = len(wsreplay.load(tmp_path / "c"))
    assert main(["compact", str(tmp_path / "c"), "--buckets", "2"]) == 0
    out = capsys.readouterr().out
    assert f"{rows:,} rows" in out and "2 buckets" in out
    assert bucket_files(tmp_path / "c")[0] == 2 and len(wsreplay.load(tmp_path / "c")) == rows


def test_compact_of_a_missing_capture_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["compact", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wsreplay compact: error:") and "does not exist" in err and "\n" not in err
