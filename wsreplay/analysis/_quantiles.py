"""Fleet-wide latency statistics in numpy: per time bin (or overall) counts, mean, max and exact quantiles.

The kernel behind :func:`wsreplay.latency_percentiles` with ``by=None``: the
same table pandas' ``groupby(pd.Grouper(freq=...)).quantile`` gives (every bin
from the first to the last, empty ones included; quantiles by linear
interpolation, computed as pandas computes them, so they are equal to the
last bit), without sorting the rows by time first: a bin's values are
gathered by one stable sort of small bin codes (none when the rows already
are in time order), and each quantile is an order statistic found by
:func:`numpy.partition`, which is linear in the bin's rows. A week of a
1,000-outpost fleet is about 60 M latencies; pandas sorted them per bin.

The mean is the plain sum over the count (pandas uses a compensated sum:
the two can differ in the last bits). Frequencies that are not fixed
lengths (``"W"``, ``"MS"``...), time zones other than UTC and missing
times are left to pandas (:func:`fleet_percentiles` returns ``None``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pandas.tseries.offsets import BaseOffset, Tick

__all__ = ["fleet_percentiles", "quantile_columns"]


def quantile_columns(qs: Sequence[float]) -> list[str]:
    """The result's column name of each quantile (``p50_s``, ``p99.9_s``...)."""
    return [f"p{x * 100:g}_s" for x in qs]


def _order_statistics(values: np.ndarray, qs: Sequence[float]) -> tuple[list[float], float]:
    """The *qs* quantiles of *values* (no NaN, at least one) as pandas interpolates them, and their maximum."""
    m = len(values)
    pos = [q * (m - 1) for q in qs]
    below = [int(np.floor(p)) for p in pos]
    above = [min(b + 1, m - 1) for b in below]
    kth = sorted({*below, *above, m - 1})
    part = np.partition(values, kth)
    out = []
    for p, lo, hi in zip(pos, below, above, strict=True):
        a, b = float(part[lo]), float(part[hi])
        out.append(a + (b - a) * (p - lo))
    return out, float(part[m - 1])


def _bins(sent: pd.Series, freq: BaseOffset) -> tuple[np.ndarray, np.ndarray] | None:
    """Bin code per row and each bin's start (as *sent*'s dtype), as ``pd.Grouper(freq=freq, label='left')`` bins."""
    dtype = sent.dtype
    if not isinstance(dtype, pd.DatetimeTZDtype) or str(dtype.tz) != "UTC" or not isinstance(freq, Tick):
        return None
    t = sent.to_numpy(dtype=f"datetime64[{dtype.unit}]").view(np.int64)
    per_s = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[dtype.unit]
    step_ns = int(freq.nanos)
    if (step_ns * per_s) % 10**9 or sent.isna().any():
        return None
    step = step_ns * per_s // 10**9
    day = 86_400 * per_s
    lo, hi = int(t.min()), int(t.max())
    origin = lo - lo % day  # origin="start_day": midnight (UTC) of the first time
    first = origin + (lo - origin) // step * step
    codes = t - first
    codes //= step
    n_bins = (hi - first) // step + 1
    starts = first + np.arange(n_bins, dtype=np.int64) * step
    return codes, starts.view(f"datetime64[{dtype.unit}]")


def fleet_percentiles(
    sent: pd.Series, latency: np.ndarray, freq: BaseOffset | None, qs: Sequence[float]
) -> pd.DataFrame | None:
    """:func:`~wsreplay.latency_percentiles` with ``by=None`` (before its ``unanswered`` column), or None.

    Parameters
    ----------
    sent : pandas.Series
        ``sent_ts`` of each frame (any order).
    latency : numpy.ndarray
        Its latency in seconds (NaN: unanswered).
    freq : pandas offset, optional
        Time bins; ``None`` for one row over all frames.
    qs : sequence of float
        Quantiles in [0, 1].

    Returns
    -------
    pandas.DataFrame or None
        ``time`` (with *freq*), ``frames``, ``answered``, ``mean_s``,
        ``max_s`` and one column per quantile; ``None`` where pandas must
        compute it (see the module docstring).
    """
    n = len(latency)
    names = quantile_columns(qs)
    if n == 0:
        return None  # pandas' empty table, with its dtypes
    if freq is None:
        codes, n_bins, starts = np.zeros(n, dtype=np.int64), 1, None
    else:
        bins = _bins(sent, freq)
        if bins is None:
            return None
        codes, starts = bins
        n_bins = len(starts)
    ok = ~np.isnan(latency)
    frames = np.bincount(codes, minlength=n_bins)
    c_ok = codes[ok]
    vals = latency[ok]
    answered = np.bincount(c_ok, minlength=n_bins)
    if len(c_ok) > 1 and not bool((c_ok[1:] >= c_ok[:-1]).all()):
        order = np.argsort(c_ok.astype(np.int16 if n_bins < 2**15 else np.int64), kind="stable")
        vals = vals[order]
    del c_ok
    mean = np.full(n_bins, np.nan)
    high = np.full(n_bins, np.nan)
    qv = np.full((len(qs), n_bins), np.nan)
    ends = np.cumsum(answered)
    for k in np.flatnonzero(answered):
        seg = vals[ends[k] - answered[k] : ends[k]]
        mean[k] = seg.sum() / len(seg)
        qk, high[k] = _order_statistics(seg, qs)
        qv[:, k] = qk
    out = pd.DataFrame({"frames": frames, "answered": answered, "mean_s": mean, "max_s": high})
    for name, column in zip(names, qv, strict=True):
        out[name] = column
    if starts is not None:
        out.insert(0, "time", pd.Series(starts).dt.tz_localize("UTC"))
    return out
