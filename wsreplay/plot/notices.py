"""Notices pushed to browsers over ``/ws/client/``, stacked by level."""

from __future__ import annotations

from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..analysis import notice_frequency as _notice_frequency
from ..exceptions import ConfigurationError
from ._style import LEVEL_COLORS, auto_freq, color_for_level, empty_message, get_ax, has_columns, naive_utc, time_axis

__all__ = ["plot_notices"]

_ORDER = tuple(LEVEL_COLORS)


def plot_notices(
    data: pd.DataFrame,
    *,
    freq: str | pd.Timedelta | None = None,
    by: str | None = "level",
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Notice frames per time bin, stacked by level (or message type).

    Parameters
    ----------
    data : pandas.DataFrame
        The frames (:func:`wsreplay.load`) or the result of
        :func:`wsreplay.notice_frequency` (time index, one count column per value).
    freq : str or Timedelta, optional
        Bin width when *data* is the frames; by default about 120 bins over the capture.
    by : str, optional
        Passed to :func:`wsreplay.notice_frequency`.
    ax : matplotlib.axes.Axes, optional
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.bar`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if has_columns(data, ("ts", "endpoint", "event")):
        if freq is None:
            freq = auto_freq(data["ts"].min(), data["ts"].max()) if len(data) else "1min"
        counts = _notice_frequency(data, freq=freq, by=by)
    elif isinstance(data, pd.DataFrame) and isinstance(data.index, pd.DatetimeIndex):
        counts = data
    else:
        raise ConfigurationError("plot_notices needs the frames or wsreplay.notice_frequency's result")
    ax = get_ax(ax, size=(10.0, 3.2))
    if counts.empty or int(counts.to_numpy().sum()) == 0:
        return empty_message(ax, "no notices in this capture")
    columns = sorted(counts.columns, key=lambda c: (_ORDER.index(c) if c in _ORDER else len(_ORDER), str(c)))
    t = np.asarray(mdates.date2num(naive_utc(counts.index)), dtype=float)
    if len(t) > 1:
        width = float(np.median(np.diff(t)))
    else:
        step = pd.Timedelta(freq) if freq is not None else pd.Timedelta("1min")
        width = step / pd.Timedelta(days=1)
    bottom = np.zeros(len(t))
    for i, col in enumerate(columns):
        values = counts[col].to_numpy(dtype=float)
        opts: dict[str, Any] = {"width": width * 0.9, "align": "edge", "color": color_for_level(col, i)} | kwargs
        ax.bar(t, values, bottom=bottom, label=str(col), **opts)
        bottom += values
    ax.xaxis_date()
    time_axis(ax)
    ax.set_ylabel("notices")
    ax.set_ylim(0, max(float(bottom.max()) * 1.1, 1.0))
    total = int(counts.to_numpy().sum())
    per = f" per {freq}" if freq is not None else ""
    ax.set_title(f"Notices to browsers ({total:,}{per}, by {counts.columns.name or by})", loc="left", fontsize=11)
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="y", color="#eeeeee")
    ax.set_axisbelow(True)
    return ax
