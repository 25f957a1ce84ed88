"""Jupyter glue: HTML views registered with a real IPython shell, progress bars, a segment-wise load."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from presentation_support import fleet_scenario

import wsreplay
from wsreplay import jupyter
from wsreplay.record import RecorderStats
from wsreplay.sim import simulate_virtual


@pytest.fixture(scope="module")
def multi_segment(tmp_path_factory):
    out = tmp_path_factory.mktemp("jupyter") / "cap"
    truth = simulate_virtual(fleet_scenario(), out, segment_rows=150)
    assert len(list(out.glob("*.parquet"))) > 3
    return out, truth


def test_load_with_progress_equals_load(multi_segment, capsys):
    path, _ = multi_segment
    got = jupyter.load(path)
    want = wsreplay.load(path)
    pd.testing.assert_frame_equal(got, want)
    assert "loading" in capsys.readouterr().err  # the bar went to stderr outside Jupyter
    cols = ["ts", "conn_id", "event"]
    pd.testing.assert_frame_equal(jupyter.load(path, columns=cols, progress=False), wsreplay.load(path, columns=cols))


def test_timed_progress_fills_while_the_block_runs(capsys):
    with jupyter.timed_progress(0.6, desc="waiting") as bar:
        time.sleep(0.9)
    assert bar.n == pytest.approx(0.6, abs=0.05)
    assert "waiting" in capsys.readouterr().err
    with jupyter.timed_progress(10, enabled=False) as nothing:
        assert nothing is None


def test_html_views_through_a_real_ipython_shell(multi_segment):
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    try:
        _check_views(ip, multi_segment)
    finally:
        InteractiveShell.clear_instance()


def _check_views(ip, multi_segment):
    assert jupyter.enable(ip)
    _, truth = multi_segment
    data, _ = ip.display_formatter.format(fleet_scenario())
    assert "wsreplay scenario" in data["text/html"] and "disconnect" in data["text/html"]
    assert "secret" not in data["text/html"]  # tokens are never shown
    data, _ = ip.display_formatter.format(truth)
    assert "simulation truth" in data["text/html"] and "outpost/disconnect 1" in data["text/html"]
    data, _ = ip.display_formatter.format(RecorderStats(frames=12, connections_total=3))
    assert "<td style='text-align:left'>12</td>" in data["text/html"]
    frames = wsreplay.load(multi_segment[0])
    data, _ = ip.display_formatter.format(wsreplay.summarize(frames))
    assert "wsreplay capture" in data["text/html"]


def test_enable_without_ipython_is_a_no_op():
    assert jupyter.enable() is False  # no running shell in pytest
