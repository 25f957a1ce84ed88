"""plot_uptime: one row per outpost, outages where the analysis (and the truth) put them."""

from __future__ import annotations

import inspect

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from presentation_support import simulated_frames

import wsreplay
from wsreplay.exceptions import ConfigurationError
from wsreplay.plot._style import CAUSE_COLORS, short_ids


def _spans(ax):
    """(left, right, y, rgba) of every outage span drawn (not the green 'up' background)."""
    out = []
    for coll in ax.collections:
        if not isinstance(coll, PolyCollection) or coll.get_zorder() < 2:
            continue
        for path, color in zip(coll.get_paths(), np.broadcast_to(coll.get_facecolor(), (len(coll.get_paths()), 4))):
            v = path.vertices
            out.append((v[:, 0].min(), v[:, 0].max(), (v[:, 1].min() + v[:, 1].max()) / 2, tuple(color)))
    return out


def _num(ts):
    return mdates.date2num(pd.Timestamp(ts).tz_convert(None).to_datetime64())


def test_draws_one_row_per_outpost_and_each_outage_at_its_time(frames, simulated):
    _fig, ax = plt.subplots()
    assert wsreplay.plot_uptime(frames, level="outpost", ax=ax) is ax
    up = wsreplay.uptime(frames, level="outpost")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == len(up) == 3
    out = wsreplay.outages(frames, level="outpost")
    spans = _spans(ax)
    assert len(spans) == len(out) == 3
    for row in out.itertuples():
        name = short_ids(out["outpost_uuid"])[row.outpost_uuid]
        y = labels.index(next(label for label in labels if label.startswith(name)))
        match = [s for s in spans if s[2] == pytest.approx(y)]
        assert len(match) == 1
        left, _right, _y, color = match[0]
        assert left == pytest.approx(_num(row.start), abs=1e-9)
        assert color[:3] == pytest.approx(matplotlib_rgb(CAUSE_COLORS[str(row.cause)]))
    # and the analysis agrees with the simulator's truth on where the outages were
    truth = simulated[1].outages
    truth = truth[truth["level"] == "outpost"].sort_values("start")
    assert (out["start"].to_numpy() - truth["start"].to_numpy()).max() < pd.Timedelta(seconds=2)


def matplotlib_rgb(color: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return to_rgb(color)


def test_labels_are_worst_first_with_uptime_and_title_counts(frames):
    ax = wsreplay.plot_uptime(frames, level="outpost")
    up = wsreplay.uptime(frames, level="outpost").sort_values("uptime")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    names = short_ids(up["outpost_uuid"])
    assert [label.split()[0] for label in labels] == [names[u] for u in up["outpost_uuid"]]
    assert labels[0].endswith(f"{up['uptime'].iloc[0] * 100:.2f}%")
    assert "3 outposts, 3 outages" in ax.get_title(loc="left")


def test_restarts_and_upgrades_are_marked(frames):
    ax = wsreplay.plot_uptime(frames, level="outpost")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"restart", "upgrade", "disconnect", "new instance", "new version"} <= set(legend)
    offsets = np.concatenate([c.get_offsets() for c in ax.collections if not isinstance(c, PolyCollection)])
    assert len(offsets) == len(wsreplay.restarts(frames))


def test_many_outposts_share_an_others_row():
    frames, _ = simulated_frames(outposts=12, seed=2)
    ax = wsreplay.plot_uptime(frames, level="outpost", top=5)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 5
    assert labels[-1].startswith("others (8)")
    assert "the 4 worst shown one per row" in ax.get_title(loc="left")


def test_accepts_the_outages_result(frames):
    out = wsreplay.outages(frames, level="outpost")
    ax = wsreplay.plot_uptime(out, level="outpost", uptime=wsreplay.uptime(frames, level="outpost"))
    assert len(_spans(ax)) == 3
    ax2 = wsreplay.plot_uptime(out, level="outpost")  # without uptime: rows from the outages alone
    assert len(ax2.get_yticklabels()) == 3


def test_defaults_to_the_level_of_the_uptime_analysis(frames):
    default = inspect.signature(wsreplay.uptime).parameters["level"].default
    assert inspect.signature(wsreplay.plot_uptime).parameters["level"].default == default
    ax = wsreplay.plot_uptime(frames)
    assert len(ax.get_yticklabels()) == len(wsreplay.uptime(frames))


def test_instance_level_and_empty_and_bad_input(frames):
    ax = wsreplay.plot_uptime(frames, level="instance")
    assert len(ax.get_yticklabels()) == len(wsreplay.uptime(frames, level="instance"))
    empty = wsreplay.plot_uptime(frames.iloc[:0], ax=plt.figure().gca())
    assert "no outpost frames" in empty.texts[0].get_text()
    with pytest.raises(ConfigurationError):
        wsreplay.plot_uptime(pd.DataFrame({"a": [1]}))
    with pytest.raises(ConfigurationError):
        wsreplay.plot_uptime(frames, level="fleet")  # type: ignore[arg-type]


def test_every_outage_cause_has_its_own_colour():
    from wsreplay.analysis import CAUSES

    assert set(CAUSES) <= set(CAUSE_COLORS)
    assert len({CAUSE_COLORS[c] for c in CAUSES}) == len(CAUSES)
