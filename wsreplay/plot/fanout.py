"""TRIGGER_UPDATE fan-out: how fast each configuration push reached the outpost's connections."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..analysis import trigger_fanout as _trigger_fanout
from ._style import analysed, empty_message, get_ax, naive_utc, time_axis

__all__ = ["plot_trigger_fanout"]


def plot_trigger_fanout(
    data: pd.DataFrame,
    *,
    window: float | str | pd.Timedelta = 1.0,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Each push's delivery delay per connection over time; connections that missed it on top.

    A dot is one connection that got a push (x: when the push started, y:
    how long after its first frame this connection got it, ms). A red ``x``
    in the band above the plot is a connection that was open when the push
    started and never got it.

    Parameters
    ----------
    data : pandas.DataFrame
        The frames (:func:`wsreplay.load`) or the result of :func:`wsreplay.trigger_fanout`.
    window : float, str or Timedelta
        Passed to :func:`wsreplay.trigger_fanout` when *data* is the frames.
    ax : matplotlib.axes.Axes, optional
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.scatter` for the delivered dots.

    Returns
    -------
    matplotlib.axes.Axes
    """
    fan = analysed(
        data,
        ("push_ts", "delay_s"),
        lambda frames: _trigger_fanout(frames, window=window),
        "plot_trigger_fanout needs the frames or wsreplay.trigger_fanout's result",
    )
    ax = get_ax(ax, size=(10.0, 3.2))
    if fan.empty:
        return empty_message(ax, "no TRIGGER_UPDATE pushes in this capture")
    got = fan[fan["delay_s"].notna()]
    missed = fan[fan["delay_s"].isna()]
    ceiling = float(got["delay_s"].max() * 1e3) if len(got) else 1.0
    ceiling = max(ceiling, 1.0)
    opts: dict[str, Any] = {"s": 14, "alpha": 0.6, "color": "#1f77b4", "label": "delivered"} | kwargs
    if len(got):
        ax.scatter(naive_utc(got["push_ts"]), got["delay_s"].to_numpy(dtype=float) * 1e3, **opts)
    if len(missed):
        jitter = np.linspace(0, 0.08, len(missed)) % 0.08
        ax.scatter(
            naive_utc(missed["push_ts"]),
            ceiling * (1.15 + jitter),
            marker="x",
            color="#d62728",
            s=24,
            label="missed (open, never got it)",
        )
    ax.set_ylim(0, ceiling * 1.3)
    ax.set_ylabel("delivery delay (ms)")
    time_axis(ax)
    ax.grid(color="#eeeeee")
    pushes = int(fan.drop_duplicates(["outpost_uuid", "push"]).shape[0])
    ax.set_title(
        f"TRIGGER_UPDATE fan-out ({pushes:,} pushes, {len(got):,} deliveries, {len(missed):,} missed)",
        loc="left",
        fontsize=11,
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    return ax
