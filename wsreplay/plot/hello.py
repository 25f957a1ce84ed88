"""HELLO intervals: how regularly the outposts said hello."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..analysis import hello_intervals as _hello_intervals
from ..exceptions import ConfigurationError
from ._style import analysed, empty_message, get_ax

__all__ = ["plot_hello_intervals"]


def plot_hello_intervals(
    data: pd.DataFrame,
    *,
    bins: int = 60,
    factor: float = 1.5,
    clip: float = 0.995,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Histogram of the gaps between an instance's consecutive HELLOs.

    Gaps on one connection and gaps that span a reconnect are stacked in two
    colours; the y axis is logarithmic so the rare long gaps of an outage
    show next to the thousands of regular ones. The median gap (the expected
    interval) and ``factor x`` it (when authentik's cache expires) are marked.

    Parameters
    ----------
    data : pandas.DataFrame
        The frames (:func:`wsreplay.load`) or the result of :func:`wsreplay.hello_intervals`.
    bins : int
        Histogram bins.
    factor : float
        Mark ``factor x`` the median interval (authentik: 1.5).
    clip : float
        Gaps above this quantile are gathered in the last bin (labelled with their count).
    ax : matplotlib.axes.Axes, optional
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.hist`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    hi = analysed(
        data,
        ("interval_s", "instance_uuid"),
        _hello_intervals,
        "plot_hello_intervals needs the frames or wsreplay.hello_intervals' result",
    )
    if not 0 < clip <= 1:
        raise ConfigurationError(f"clip must be in (0, 1], not {clip!r}")
    ax = get_ax(ax, size=(8.0, 3.6))
    gaps = hi[hi["interval_s"].notna()]
    if gaps.empty:
        return empty_message(ax, "fewer than two HELLOs per instance: no intervals")
    values = gaps["interval_s"].to_numpy(dtype=float)
    reconnected = (
        gaps["reconnected"].to_numpy(dtype=bool) if "reconnected" in gaps.columns else np.zeros(len(gaps), bool)
    )
    median = float(np.median(values[~reconnected])) if (~reconnected).any() else float(np.median(values))
    top = float(np.quantile(values, clip))
    top = max(top, median * factor * 1.2)
    over = int((values > top).sum())
    edges = np.linspace(0.0, top, bins + 1)
    clipped = np.minimum(values, top)
    opts: dict[str, Any] = {"stacked": True, "alpha": 0.9} | kwargs
    ax.hist(
        [clipped[~reconnected], clipped[reconnected]],
        bins=list(edges),
        color=["#1f77b4", "#ff7f0e"],
        label=["same connection", "across a reconnect"],
        **opts,
    )
    ax.set_yscale("log")
    ax.axvline(median, color="#2ca02c", ls="--", lw=1.2, label=f"median {median:.3g} s")
    ax.axvline(median * factor, color="#d62728", ls=":", lw=1.2, label=f"{factor:g} x median (state expires)")
    if over:
        ax.text(
            0.99,
            0.55,
            f"{over:,} longer gaps\n(up to {values.max():,.3g} s)\nin the last bin",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8,
            color="#555555",
        )
    ax.set_xlabel("seconds since the instance's previous HELLO")
    ax.set_ylabel("HELLOs (log scale)")
    n_inst = int(hi["instance_uuid"].nunique())
    ax.set_title(f"HELLO intervals ({len(values):,} gaps, {n_inst:,} instances)", loc="left", fontsize=11)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    return ax
