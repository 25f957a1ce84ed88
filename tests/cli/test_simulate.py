"""``wsreplay simulate``: a capture plus its truth, deterministic per seed; clear errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from wsreplay import load
from wsreplay.cli import main
from wsreplay.sim import Truth


def test_virtual_simulation_writes_capture_and_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--virtual", "--outposts", "4", "--duration", "600", "--interval", "2", "--seed", "3"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert "simulated 4 outposts" in capsys.readouterr().out
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    a, b = load(tmp_path / "a"), load(tmp_path / "b")
    pd.testing.assert_frame_equal(a, b)  # same seed, same capture
    truth = Truth.load(tmp_path / "a")
    assert truth.clock == "virtual"
    hellos = a[a["instruction_name"] == "HELLO"]
    assert len(hellos) == int(truth.hello_counts().sum()) > 4 * 250
    assert set(a["outpost_uuid"].dropna().astype(str)) == set(truth.instances["outpost_uuid"])


def test_refuses_an_existing_capture_and_bad_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "c")
    assert main(["simulate", "--virtual", "--outposts", "1", "--duration", "20", "--out", out]) == 0
    capsys.readouterr()
    assert main(["simulate", "--virtual", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "already holds a capture" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["simulate", "--virtual", "--out", str(tmp_path / "d"), "--interval", "0"])
    assert "must be > 0" in capsys.readouterr().err


def test_real_time_simulation_goes_through_the_recorder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rt"
    argv = ["simulate", "--out", str(out), "--outposts", "2", "--duration", "1.5", "--interval", "0.2", "--seed", "1"]
    assert main([*argv, "--browsers", "1"]) == 0
    assert "in real time" in capsys.readouterr().out
    frames = load(out)
    truth = Truth.load(out)
    assert truth.clock == "real"
    hellos = frames[frames["instruction_name"] == "HELLO"]
    assert {str(k): v for k, v in hellos.groupby("instance_uuid", observed=True).size().items()} == {
        str(k): v for k, v in truth.hello_counts().items()
    }
    assert (frames["endpoint"] == "client").any()
    assert frames["user_agent"].dropna().astype(str).str.startswith(("goauthentik.io/outpost/", "Mozilla/")).all()
