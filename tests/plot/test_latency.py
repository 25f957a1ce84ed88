"""plot_ack_latency: percentile lines from latency_percentiles, a histogram of ack_latency."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import wsreplay
from wsreplay.exceptions import ConfigurationError


def test_time_lines_are_the_analysis_percentiles(frames):
    _fig, ax = plt.subplots()
    assert wsreplay.plot_ack_latency(frames, freq="10s", ax=ax) is ax
    pct = wsreplay.latency_percentiles(frames, by=None, freq="10s")
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"p50", "p90", "p99"}
    np.testing.assert_allclose(lines["p99"].get_ydata(), pct["p99_s"].to_numpy() * 1e3)
    # the latency spike (200 ms from 95 s) is in the p99 line
    assert lines["p99"].get_ydata().max() >= 150


def test_accepts_ack_latency_and_percentile_results(frames):
    lat = wsreplay.ack_latency(frames)
    ax = wsreplay.plot_ack_latency(lat, q=(0.5,))
    assert [line.get_label() for line in ax.get_lines()] == ["p50"]
    pct = wsreplay.latency_percentiles(lat, by=None, freq="30s")
    ax2 = wsreplay.plot_ack_latency(pct, ax=plt.figure().gca())
    assert len(ax2.get_lines()) == 3
    assert f"{len(lat):,} frames" in ax2.get_title(loc="left")


def test_histogram_counts_every_answered_frame(frames):
    ax = wsreplay.plot_ack_latency(frames, kind="hist")
    lat = wsreplay.ack_latency(frames)
    heights = sum(p.get_height() for p in ax.patches)
    assert heights == lat["latency_s"].notna().sum()
    p50 = wsreplay.latency_percentiles(lat, by=None)["p50_s"].iloc[0] * 1e3
    assert ax.get_lines()[0].get_xdata()[0] == pytest.approx(p50)


def test_empty_and_bad_input(frames):
    ax = wsreplay.plot_ack_latency(frames.iloc[:0], ax=plt.figure().gca())
    assert "no ACKed" in ax.texts[0].get_text()
    with pytest.raises(ConfigurationError):
        wsreplay.plot_ack_latency(frames, kind="violin")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        wsreplay.plot_ack_latency(wsreplay.latency_percentiles(frames, by=None, freq="1min"), kind="hist")


def test_histogram_of_pieces_is_that_of_their_rows_together(frames):
    """The report draws the histogram from its outpost groups' latencies, never concatenated."""
    from wsreplay.plot.latency import latency_histogram

    lat = wsreplay.ack_latency(frames)
    cut = len(lat) // 3
    pieces = [lat.iloc[:cut], lat.iloc[cut:]]
    overall = wsreplay.latency_percentiles(lat, by=None)
    whole = wsreplay.plot_ack_latency(lat, kind="hist", ax=plt.figure().gca())
    parts = latency_histogram(pieces, overall, ax=plt.figure().gca())
    assert [p.get_height() for p in parts.patches] == [p.get_height() for p in whole.patches]
    assert [p.get_x() for p in parts.patches] == [p.get_x() for p in whole.patches]
    assert [ln.get_xdata()[0] for ln in parts.get_lines()] == [ln.get_xdata()[0] for ln in whole.get_lines()]
    assert parts.get_title(loc="left") == whole.get_title(loc="left")
    none = lat.iloc[:0]
    empty = latency_histogram([none], wsreplay.latency_percentiles(none, by=None), ax=plt.figure().gca())
    assert "no ACKed" in empty.texts[0].get_text()
