"""plot_notices: notice counts per bin, stacked by level."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

import wsreplay
from wsreplay.exceptions import ConfigurationError


def test_bars_are_the_notice_frequency_counts(frames):
    ax = wsreplay.plot_notices(frames, freq="10s")
    counts = wsreplay.notice_frequency(frames, freq="10s")
    assert sum(p.get_height() for p in ax.patches) == counts.to_numpy().sum() == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["info", "warning", "error"]


def test_accepts_the_analysis_result(frames):
    counts = wsreplay.notice_frequency(frames, freq="1min", by="message_type")
    ax = wsreplay.plot_notices(counts)
    assert sum(p.get_height() for p in ax.patches) == 3
    assert "by message_type" in ax.get_title(loc="left")


def test_empty_and_bad_input(frames):
    outposts_only = frames[frames["endpoint"] == "outpost"]
    assert "no notices" in wsreplay.plot_notices(outposts_only, ax=plt.figure().gca()).texts[0].get_text()
    with pytest.raises(ConfigurationError):
        wsreplay.plot_notices(pd.DataFrame({"x": [1]}))
