"""ACK latency: percentiles over time, or the distribution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..analysis import ack_latency as _ack_latency
from ..analysis import latency_percentiles as _latency_percentiles
from ..exceptions import ConfigurationError
from ._style import analysed, auto_freq, empty_message, get_ax, has_columns, naive_utc, time_axis

__all__ = ["plot_ack_latency", "latency_histogram"]

_COLORS = ("#1f77b4", "#ff7f0e", "#d62728", "#9467bd", "#8c564b")


def plot_ack_latency(
    data: pd.DataFrame,
    *,
    kind: Literal["time", "hist"] = "time",
    freq: str | pd.Timedelta | None = None,
    q: Sequence[float] = (0.5, 0.9, 0.99),
    bins: int = 60,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """ACK latency of the frames outposts sent, in milliseconds.

    Parameters
    ----------
    data : pandas.DataFrame
        The frames (:func:`wsreplay.load`), the result of
        :func:`wsreplay.ack_latency`, or (``kind="time"``) the result of
        :func:`wsreplay.latency_percentiles` with ``by=None`` and a ``freq``.
    kind : {"time", "hist"}
        ``"time"``: the *q* percentiles per time bin as lines, with the
        maximum as a faint band. ``"hist"``: the distribution (log-spaced
        bins) with the *q* percentiles marked.
    freq : str or Timedelta, optional
        Time bin (``"1min"``, ``"1h"``...); by default about 120 bins over the capture.
    q : sequence of float
        Percentiles to draw, in [0, 1].
    bins : int
        Histogram bins (``kind="hist"``).
    ax : matplotlib.axes.Axes, optional
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.plot` (``"time"``) or
        :meth:`~matplotlib.axes.Axes.hist` (``"hist"``).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if kind not in ("time", "hist"):
        raise ConfigurationError(f"kind must be 'time' or 'hist', not {kind!r}")
    ax = get_ax(ax, size=(10.0, 3.6))
    if has_columns(data, ("time", "frames", "answered")) and "latency_s" not in data.columns:
        if kind == "hist":
            raise ConfigurationError("a histogram needs the frames or wsreplay.ack_latency's result, not percentiles")
        return _draw_time(ax, data, q, kwargs)
    lat = analysed(
        data,
        ("sent_ts", "latency_s"),
        _ack_latency,
        "plot_ack_latency needs the frames (wsreplay.load), wsreplay.ack_latency's or latency_percentiles' result",
    )
    answered = lat["latency_s"].dropna()
    if answered.empty:
        return empty_message(ax, "no ACKed outpost frames in this capture")
    if kind == "hist":
        overall = _latency_percentiles(lat, by=None, q=q).iloc[0]
        return _draw_hist(ax, [answered.to_numpy(dtype=float)], overall, q, bins, kwargs)
    if freq is None:
        freq = auto_freq(lat["sent_ts"].min(), lat["sent_ts"].max())
    pct = _latency_percentiles(lat, by=None, freq=freq, q=q)
    return _draw_time(ax, pct, q, kwargs, freq=freq)


def _qcol(x: float) -> str:
    return f"p{float(x) * 100:g}_s"


def _draw_time(ax: Axes, pct: pd.DataFrame, q: Sequence[float], kwargs: dict[str, Any], freq: Any = None) -> Axes:
    if pct.empty:
        return empty_message(ax, "no ACKed outpost frames in this capture")
    t = naive_utc(pct["time"])
    if "max_s" in pct.columns:
        ax.fill_between(
            t,
            pct[_qcol(min(q))].to_numpy(dtype=float) * 1e3 if len(q) else 0,
            pct["max_s"].to_numpy(dtype=float) * 1e3,
            step="post",
            color="#dddddd",
            label="max",
        )
    for i, x in enumerate(q):
        col = _qcol(x)
        if col not in pct.columns:
            raise ConfigurationError(f"percentile {x} is not in the data (columns: {list(pct.columns)})")
        opts: dict[str, Any] = {"color": _COLORS[i % len(_COLORS)], "lw": 1.4, "drawstyle": "steps-post"} | kwargs
        ax.plot(t, pct[col].to_numpy(dtype=float) * 1e3, label=f"p{float(x) * 100:g}", **opts)
    low = pct[_qcol(min(q))].to_numpy(dtype=float) if len(q) else np.array([])
    high = pct["max_s"].to_numpy(dtype=float) if "max_s" in pct.columns else low
    floor = float(np.nanmin(low)) if np.isfinite(low).any() else 0.0
    if floor > 0 and float(np.nanmax(high)) / floor > 50:
        # a spike would flatten everything else: a log axis keeps the usual latency readable
        ax.set_yscale("log")
        ax.set_ylabel("ACK latency (ms, log scale)")
    else:
        ax.set_ylim(bottom=0)
        ax.set_ylabel("ACK latency (ms)")
    time_axis(ax)
    ax.grid(color="#eeeeee")
    frames = int(pct["frames"].sum())
    unanswered = int(pct["unanswered"].sum()) if "unanswered" in pct.columns else 0
    title = f"ACK latency over time ({frames:,} frames"
    title += f", {unanswered:,} never ACKed)" if unanswered else ")"
    if freq is not None:
        title += f", per {freq}"
    ax.set_title(title, loc="left", fontsize=11)
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    return ax


def latency_histogram(
    pieces: Sequence[pd.DataFrame],
    overall: pd.DataFrame,
    *,
    q: Sequence[float] = (0.5, 0.9, 0.99),
    bins: int = 60,
    ax: Axes | None = None,
) -> Axes:
    """``plot_ack_latency(pd.concat(pieces), kind="hist", q=q)``, from the pieces and their percentiles.

    For a report's outpost groups: *pieces* are :func:`wsreplay.ack_latency`
    results (at least ``latency_s``), *overall* is
    ``latency_percentiles(..., by=None, q=q)`` of all of them, already computed.
    """
    ax = get_ax(ax, size=(10.0, 3.6))
    values = [v[~np.isnan(v)] for v in (p["latency_s"].to_numpy(dtype=float, na_value=np.nan) for p in pieces)]
    if not sum(len(v) for v in values):
        return empty_message(ax, "no ACKed outpost frames in this capture")
    return _draw_hist(ax, values, overall.iloc[0], q, bins, {})


def _draw_hist(
    ax: Axes, answered: Sequence[np.ndarray], overall: pd.Series, q: Sequence[float], bins: int, kwargs: dict[str, Any]
) -> Axes:
    """The histogram of the *answered* latencies (seconds, in pieces), with *overall*'s *q* percentiles marked."""
    unanswered = int(overall["unanswered"])
    ms = [v * 1e3 for v in answered if len(v)]
    positive = [m[m > 0] for m in ms]
    lows = [float(m.min()) for m in positive if len(m)]
    lo = max(min(lows) if lows else 1e-3, 1e-3)
    hi = max(max(float(m.max()) for m in ms), lo * 1.01)
    edges = np.geomspace(lo * 0.9, hi * 1.1, bins + 1)
    opts: dict[str, Any] = {"color": "#1f77b4", "alpha": 0.85} | kwargs
    # the bins are equal in log space: count them there (linear in the frames; a week of a large
    # fleet has 60 M of them), then draw the counts as the histogram's bars
    span = (float(np.log(edges[0])), float(np.log(edges[-1])))
    counts = sum(np.histogram(np.log(np.clip(m, edges[0], edges[-1])), bins=bins, range=span)[0] for m in ms)
    ax.hist(edges[:-1], bins=list(edges), weights=counts, **opts)
    ax.set_xscale("log")
    ax.set_yscale("log")
    for i, x in enumerate(q):
        v = float(overall[_qcol(x)]) * 1e3
        color = _COLORS[(i + 1) % len(_COLORS)]
        ax.axvline(v, color=color, ls="--", lw=1.2, label=f"p{float(x) * 100:g} = {v:.3g} ms")
    ax.set_xlabel("ACK latency (ms, log scale)")
    ax.set_ylabel("frames (log scale)")
    title = f"ACK latency distribution ({sum(len(m) for m in ms):,} ACKed frames"
    title += f", {unanswered:,} never ACKed)" if unanswered else ")"
    ax.set_title(title, loc="left", fontsize=11)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    return ax
