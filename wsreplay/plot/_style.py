"""Shared look of wsreplay's figures: colours, axes creation, time axes, input recognition."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..exceptions import ConfigurationError

__all__ = [
    "CAUSE_COLORS",
    "LEVEL_COLORS",
    "UP_COLOR",
    "get_ax",
    "time_axis",
    "naive_utc",
    "FRAME_COLUMNS",
    "has_columns",
    "analysed",
    "auto_freq",
    "color_for_level",
    "short_id",
    "short_ids",
    "empty_message",
]

#: Outage causes (``wsreplay.analysis.CAUSES``, plus the simulator truth's ``server_restart``).
CAUSE_COLORS: Final[dict[str, str]] = {
    "disconnect": "#d62728",
    "silent": "#9467bd",
    "restart": "#ff7f0e",
    "upgrade": "#1f77b4",
    "upstream_close": "#8c564b",
    "server_restart": "#8c564b",
    "crash": "#e377c2",
}
#: Notice levels as authentik's UI names them, plus ``(none)``.
LEVEL_COLORS: Final[dict[str, str]] = {
    "debug": "#9e9e9e",
    "info": "#1f77b4",
    "success": "#2ca02c",
    "warning": "#ff7f0e",
    "error": "#d62728",
    "(none)": "#c7c7c7",
}
#: Colour of the time an outpost was observed up.
UP_COLOR: Final = "#cfe8cf"
_OTHER_COLORS: Final = ("#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a")
#: Candidate bin widths for automatic time binning, shortest first.
_FREQS: Final = ("1s", "5s", "10s", "30s", "1min", "5min", "10min", "15min", "30min", "1h", "2h", "6h", "12h", "1D")


def get_ax(ax: Axes | None, *, size: tuple[float, float] | None = None) -> Axes:
    """*ax*, else the current axes; a new figure of *size* when no figure is open (seaborn style)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    if not plt.get_fignums() and size is not None:
        plt.figure(figsize=size)
    return plt.gca()


def naive_utc(values: Any) -> np.ndarray:
    """Timestamps as naive UTC ``datetime64[ns]`` (what matplotlib's date axis takes)."""
    idx = pd.DatetimeIndex(values)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.to_numpy(dtype="datetime64[ns]")


def time_axis(ax: Axes, *, axis: str = "x") -> None:
    """Concise date ticks on *axis*, labelled as UTC."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    target.set_major_locator(locator)
    target.set_major_formatter(mdates.ConciseDateFormatter(locator))
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)("time (UTC)")


def has_columns(data: Any, columns: Iterable[str]) -> bool:
    """Whether *data* is a DataFrame holding every one of *columns*."""
    return isinstance(data, pd.DataFrame) and all(c in data.columns for c in columns)


#: Columns that mark *data* as the frames of a capture (what :func:`wsreplay.load` returns).
FRAME_COLUMNS: Final = ("ts", "event", "conn_id")


def analysed(
    data: Any, result_columns: Iterable[str], analyse: Callable[[pd.DataFrame], pd.DataFrame], needs: str
) -> pd.DataFrame:
    """An analysis' result: *data* itself if it holds *result_columns*, else *analyse* of the frames it is.

    Raises
    ------
    ConfigurationError
        With the message *needs*, if *data* is neither the result nor frames.
    """
    if has_columns(data, result_columns):
        result: pd.DataFrame = data
        return result
    if has_columns(data, FRAME_COLUMNS):
        return analyse(data)
    raise ConfigurationError(needs)


def auto_freq(start: pd.Timestamp, end: pd.Timestamp, *, bins: int = 120) -> str:
    """The shortest round bin width giving at most about *bins* bins over ``[start, end]``."""
    span = max(pd.Timedelta(end - start), pd.Timedelta(seconds=1))
    for freq in _FREQS:
        if span / pd.Timedelta(freq) <= bins:
            return freq
    return "1D"


def color_for_level(level: str, position: int) -> str:
    """Colour of a notice level (or other category) at *position* in its legend."""
    return LEVEL_COLORS.get(str(level).lower(), _OTHER_COLORS[position % len(_OTHER_COLORS)])


def short_id(uuid: str, width: int = 8) -> str:
    """The first *width* characters of an id (enough to tell outposts apart in a legend)."""
    s = str(uuid)
    return s if len(s) <= width else s[:width]


def short_ids(ids: Iterable[str]) -> dict[str, str]:
    """Short labels telling *ids* apart: their first 8 characters, else their last 12, else whole."""
    keys = [str(i) for i in dict.fromkeys(ids)]
    for cut in (lambda k: k[:8], lambda k: k[-12:]):
        labels = {k: cut(k) for k in keys}
        if len(set(labels.values())) == len(keys):
            return labels
    return {k: k for k in keys}


def empty_message(ax: Axes, text: str) -> Axes:
    """Write *text* in the middle of an empty *ax* and hide its ticks."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax
