"""The fleet's uptime timeline: one row per outpost (or instance), outages as coloured spans."""

from __future__ import annotations

from typing import Any, Literal

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..analysis import outages as _outages
from ..analysis import restarts as _restarts
from ..analysis import uptime as _uptime
from ..exceptions import ConfigurationError
from ._style import (
    CAUSE_COLORS,
    FRAME_COLUMNS,
    UP_COLOR,
    empty_message,
    get_ax,
    has_columns,
    naive_utc,
    short_ids,
    time_axis,
)

__all__ = ["plot_uptime"]

_OUTAGE_COLUMNS = ("outpost_uuid", "start", "end", "cause")
#: Narrowest span drawn, as a share of the time axis (so a 15 s outage in a week stays visible).
_MIN_WIDTH = 1 / 600


def _num(values: Any) -> np.ndarray:
    return np.asarray(mdates.date2num(naive_utc(values)), dtype=np.float64)


def plot_uptime(
    data: pd.DataFrame,
    *,
    level: Literal["outpost", "instance"] = "instance",
    top: int = 25,
    uptime: pd.DataFrame | None = None,
    restarts: pd.DataFrame | None = None,
    policy: Literal["observed", "authentik"] = "observed",
    factor: float = 1.5,
    interval: float | str | pd.Timedelta | None = None,
    start: Any = None,
    end: Any = None,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Uptime timeline: one row per outpost (or instance), its outages as spans coloured by cause.

    Rows are ordered worst first (lowest uptime). With more rows than *top*,
    the ``top - 1`` worst are drawn one per row and all the others share a
    last ``others`` row, where their outages are drawn translucent on top of
    each other (the darker, the more outposts were down at once), so a fleet
    of 500 reads as well as one outpost. Restarts are marked ``|`` and
    upgrades ``^`` (outpost level, when *data* is the frames). Very short
    outages are widened to about 1/600 of the time axis so they stay visible.

    Parameters
    ----------
    data : pandas.DataFrame
        The frames (:func:`wsreplay.load`; outages, uptime and restarts are
        computed with :func:`wsreplay.outages`, :func:`wsreplay.uptime` and
        :func:`wsreplay.restarts`), or the result of :func:`wsreplay.outages`
        (then pass *uptime* and *restarts* for the observed windows and
        markers; without them each row spans the outages' time range).
    level : {"outpost", "instance"}
        One row per outpost or per outpost process (instance), as for
        :func:`wsreplay.uptime`, whose default it shares. Pass the level the
        *outages*, *uptime* and *restarts* given were computed at.
    top : int
        Most rows drawn (at least 2).
    uptime, restarts : pandas.DataFrame, optional
        Results of :func:`wsreplay.uptime` / :func:`wsreplay.restarts` at the same level.
    policy, factor, interval, start, end
        Passed to the analysis functions when *data* is the frames.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: the current axes; a figure sized to the rows when none is open).
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.barh` for the outage spans.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if level not in ("outpost", "instance"):
        raise ConfigurationError(f"level must be 'outpost' or 'instance', not {level!r}")
    if top < 2:
        raise ConfigurationError(f"top must be at least 2, not {top!r}")
    key = "outpost_uuid" if level == "outpost" else "instance_uuid"
    if has_columns(data, FRAME_COLUMNS):
        opts: dict[str, Any] = {"level": level, "policy": policy, "factor": factor, "interval": interval}
        opts.update(start=start, end=end)
        out = _outages(data, **opts)
        if uptime is None:
            uptime = _uptime(data, **opts)
        if restarts is None and level == "outpost":
            restarts = _restarts(data)
    elif has_columns(data, _OUTAGE_COLUMNS):
        out = data
    else:
        raise ConfigurationError("plot_uptime needs the frames (wsreplay.load) or the result of wsreplay.outages")
    rows = _rows(out, uptime, key)
    n_rows = min(len(rows), top)
    ax = get_ax(ax, size=(11.0, 1.2 + 0.3 * max(n_rows, 1)))
    if rows.empty:
        return empty_message(ax, "no outpost frames in this capture")

    shown = rows.iloc[: top - 1] if len(rows) > top else rows
    others = rows.iloc[top - 1 :] if len(rows) > top else rows.iloc[:0]
    ypos = {k: i for i, k in enumerate(shown[key])}
    other_y = len(shown)
    for k in others[key]:
        ypos[k] = other_y

    t0, t1 = _num([rows["start"].min()])[0], _num([rows["end"].max()])[0]
    span = max(t1 - t0, 1e-9)
    # observed (up) background, one bar per shown row and one for the others
    bg_left = _num(shown["start"])
    bg_width = _num(shown["end"]) - bg_left
    ys = np.arange(len(shown), dtype=float)
    if len(others):
        bg_left = np.append(bg_left, _num([others["start"].min()]))
        bg_width = np.append(bg_width, _num([others["end"].max()])[0] - bg_left[-1])
        ys = np.append(ys, other_y)
    _spans(ax, ys, bg_left, bg_width, color=UP_COLOR, zorder=1)

    causes_seen: list[str] = []
    if len(out):
        o = out[out[key].astype("str").isin(ypos.keys())]
        y = o[key].astype("str").map(ypos).to_numpy(dtype=float)
        left = _num(o["start"])
        width = np.maximum(_num(o["end"]) - left, span * _MIN_WIDTH)
        cause = o["cause"].astype("str").to_numpy()
        in_others = y == other_y if len(others) else np.zeros(len(o), dtype=bool)
        alpha_others = float(min(0.8, max(0.08, 4.0 / max(len(others), 1))))
        for c in dict.fromkeys(cause):
            color = CAUSE_COLORS.get(c, "#7f7f7f")
            for sel, alpha in ((~in_others, 1.0), (in_others, alpha_others)):
                m = (cause == c) & sel
                if m.any():
                    _spans(ax, y[m], left[m], width[m], color=color, alpha=alpha, **kwargs)
            causes_seen.append(c)

    markers: list[Line2D] = []
    if restarts is not None and len(restarts) and key in restarts.columns:
        # one marker per row: the shared others row would be a wall of them
        r = restarts[restarts[key].astype("str").isin(shown[key])]
        if len(r):
            ry = r[key].astype("str").map(ypos).to_numpy(dtype=float)
            rx = _num(r["ts"])
            up = r["upgrade"].to_numpy(dtype=bool) if "upgrade" in r.columns else np.zeros(len(r), dtype=bool)
            if (~up).any():
                ax.scatter(rx[~up], ry[~up], marker="|", s=120, color="#333333", zorder=3, linewidths=1.5)
                markers.append(Line2D([], [], marker="|", ls="", color="#333333", markersize=10, label="new instance"))
            if up.any():
                ax.scatter(rx[up], ry[up], marker="^", s=45, color="#1f3f7f", zorder=3)
                markers.append(Line2D([], [], marker="^", ls="", color="#1f3f7f", label="new version"))

    names = short_ids(shown[key])
    labels = [_label(names[k], u) for k, u in zip(shown[key], shown["uptime"])]
    if len(others):
        worst_other = others["uptime"].min()
        labels.append(f"others ({len(others):,})" + ("" if pd.isna(worst_other) else f" >={worst_other * 100:.2f}%"))
    ax.set_yticks(np.arange(len(labels)), labels=labels, fontsize=8 if len(labels) > 12 else 9)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlim(t0 - span * 0.01, t1 + span * 0.01)
    ax.xaxis_date()
    time_axis(ax)
    ax.grid(axis="x", color="#e0e0e0", zorder=0)
    ax.set_axisbelow(True)
    n_out = len(out)
    noun = "outposts" if level == "outpost" else "instances"
    title = f"Uptime: {len(rows):,} {noun}, {n_out:,} outage{'s' if n_out != 1 else ''}"
    if len(others):
        title += f" (the {len(shown)} worst shown one per row)"
    ax.set_title(title, loc="left", fontsize=11)
    handles: list[Any] = [Patch(color=UP_COLOR, label="up (observed)")]
    handles += [Patch(color=CAUSE_COLORS.get(c, "#7f7f7f"), label=c.replace("_", " ")) for c in causes_seen]
    handles += markers
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    return ax


def _spans(ax: Axes, y: np.ndarray, left: np.ndarray, width: np.ndarray, *, zorder: float = 2, **kwargs: Any) -> None:
    """Horizontal bars as one collection (thousands of outages draw in milliseconds)."""
    h = 0.4
    verts = np.stack(
        [
            np.column_stack([left, y - h]),
            np.column_stack([left, y + h]),
            np.column_stack([left + width, y + h]),
            np.column_stack([left + width, y - h]),
        ],
        axis=1,
    )
    opts: dict[str, Any] = {"edgecolor": "none", "linewidth": 0, "zorder": zorder} | kwargs
    ax.add_collection(PolyCollection(list(verts), **opts), autolim=False)


def _label(name: str, share: float) -> str:
    pct = "" if pd.isna(share) else f"  {share * 100:.2f}%"
    return f"{name}{pct}"


def _rows(out: pd.DataFrame, uptime: pd.DataFrame | None, key: str) -> pd.DataFrame:
    """One row per outpost/instance: key, start, end, uptime, down_s; worst first."""
    if uptime is not None and key in uptime.columns:
        rows = uptime[[key, "start", "end", "uptime", "down_s"]].copy()
    elif len(out):
        g = out.groupby(out[key].astype("str"), sort=True)
        rows = pd.DataFrame(
            {
                "start": out["start"].min(),
                "end": out["end"].max(),
                "uptime": np.nan,
                "down_s": g["duration_s"].sum() if "duration_s" in out.columns else g.size().astype(float),
            }
        ).rename_axis(key)
        rows = rows.reset_index()
    else:
        return pd.DataFrame(columns=[key, "start", "end", "uptime", "down_s"])
    rows[key] = rows[key].astype("str")
    rows = rows.sort_values(["uptime", "down_s", key], ascending=[True, False, True], na_position="last")
    return rows.reset_index(drop=True)
