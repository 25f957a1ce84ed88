"""plot_hello_intervals: a histogram of every HELLO gap, reconnects apart."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import wsreplay
from wsreplay.exceptions import ConfigurationError


def test_every_gap_is_counted_and_the_median_marked(frames):
    ax = wsreplay.plot_hello_intervals(frames)
    hi = wsreplay.hello_intervals(frames)
    gaps = hi["interval_s"].dropna()
    # stacked: the top of the second stack is the total per bin
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights) == len(gaps)
    labels = [line.get_label() for line in ax.get_lines()]
    median = np.median(gaps[~hi.loc[gaps.index, "reconnected"]])
    assert ax.get_lines()[0].get_xdata()[0] == pytest.approx(median)
    assert labels[0].startswith("median")
    assert f"{len(gaps):,} gaps" in ax.get_title(loc="left")


def test_accepts_the_analysis_result_and_refuses_others(frames):
    ax = wsreplay.plot_hello_intervals(wsreplay.hello_intervals(frames), bins=10)
    assert len(ax.patches) == 20  # two stacks of 10 bins
    with pytest.raises(ConfigurationError):
        wsreplay.plot_hello_intervals(frames, clip=0)
    empty = wsreplay.plot_hello_intervals(frames.iloc[:0], ax=plt.figure().gca())
    assert "no intervals" in empty.texts[0].get_text()
