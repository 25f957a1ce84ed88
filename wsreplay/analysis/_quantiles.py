"""Fleet-wide latency statistics in numpy: per time bin (or overall) counts, mean, max and exact quantiles.

The kernel behind :func:`wsreplay.latency_percentiles` with ``by=None`` and
:func:`wsreplay.analysis.latency.fleet_latency_percentiles`: the same table
pandas' ``groupby(pd.Grouper(freq=...)).quantile`` gives (every bin from the
first to the last, empty ones included; quantiles by linear interpolation,
computed as pandas computes them, so they are equal to the last bit).

The rows may come in pieces (a report's outpost groups, a week's 60 M
latencies of a 1,000-outpost fleet): they are never concatenated or sorted
by time. Each piece already in time order is cut into bins by a binary
search of the bin edges; one that is not is ordered by one stable (radix)
sort of its small bin codes. A bin's values are gathered from every piece,
and each quantile is an order statistic found by :func:`numpy.partition`,
linear in the bin's rows.

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


def _unit(sent: pd.Series) -> str | None:
    """The time unit of *sent* if its bins can be computed here (UTC, no missing time), else None."""
    dtype = sent.dtype
    if not isinstance(dtype, pd.DatetimeTZDtype) or str(dtype.tz) != "UTC" or sent.isna().any():
        return None
    return str(dtype.unit)


def _times(sent: pd.Series, unit: str) -> np.ndarray:
    return sent.to_numpy(dtype=f"datetime64[{unit}]").view(np.int64)


def _edges(pieces: Sequence[Piece], freq: BaseOffset) -> tuple[np.ndarray, str] | None:
    """The bins' edges (``n_bins + 1``, in the pieces' time unit) as ``pd.Grouper(freq=freq, label='left')`` cuts."""
    units = {_unit(sent) for sent, _ in pieces}
    if len(units) != 1 or None in units or not isinstance(freq, Tick):
        return None
    unit = str(units.pop())
    per_s = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    step_ns = int(freq.nanos)
    if (step_ns * per_s) % 10**9:
        return None
    step = step_ns * per_s // 10**9
    lo = min(int(_times(sent, unit).min()) for sent, _ in pieces)
    hi = max(int(_times(sent, unit).max()) for sent, _ in pieces)
    day = 86_400 * per_s
    origin = lo - lo % day  # origin="start_day": midnight (UTC) of the first time
    first = origin + (lo - origin) // step * step
    n_bins = (hi - first) // step + 1
    return first + np.arange(n_bins + 1, dtype=np.int64) * step, unit


def _by_bin(sent: pd.Series, latency: np.ndarray, edges: np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """*latency* in bin order, and where each bin's values start (``len(edges)`` bounds)."""
    t = _times(sent, unit)
    if len(t) > 1 and not bool((t[1:] >= t[:-1]).all()):
        codes = t - edges[0]
        codes //= edges[1] - edges[0]
        order = np.argsort(codes.astype(np.int16 if len(edges) <= 2**15 else np.int64), kind="stable")
        latency, t = latency[order], t[order]
    return latency, np.searchsorted(t, edges, side="left")


#: One part of the rows: the ``sent_ts`` Series and the latency (seconds, NaN: unanswered) of each.
Piece = tuple[pd.Series, np.ndarray]


def fleet_percentiles(pieces: Sequence[Piece], freq: BaseOffset | None, qs: Sequence[float]) -> pd.DataFrame | None:
    """:func:`~wsreplay.latency_percentiles` with ``by=None`` (before its ``unanswered`` column), or None.

    Parameters
    ----------
    pieces : sequence of (pandas.Series, numpy.ndarray)
        The rows, in one piece or several (a report's outpost groups): each
        piece's ``sent_ts`` (any order; a piece in time order is not sorted
        again) and latency in seconds (NaN: unanswered).
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
    pieces = [(sent, lat) for sent, lat in pieces if len(lat)]
    if not pieces:
        return None  # pandas' empty table, with its dtypes
    starts = None
    if freq is None:
        binned = [(lat, np.array([0, len(lat)])) for _, lat in pieces]
    else:
        cut = _edges(pieces, freq)
        if cut is None:
            return None
        edges, unit = cut
        starts = edges[:-1].view(f"datetime64[{unit}]")
        binned = [_by_bin(sent, lat, edges, unit) for sent, lat in pieces]
    n_bins = len(binned[0][1]) - 1
    frames = np.zeros(n_bins, dtype=np.int64)
    answered = np.zeros(n_bins, dtype=np.int64)
    mean = np.full(n_bins, np.nan)
    high = np.full(n_bins, np.nan)
    qv = np.full((len(qs), n_bins), np.nan)
    for k in range(n_bins):
        parts = [vals[bounds[k] : bounds[k + 1]] for vals, bounds in binned]
        seg = parts[0] if len(parts) == 1 else np.concatenate(parts)
        frames[k] = len(seg)
        seg = seg[~np.isnan(seg)]
        answered[k] = len(seg)
        if len(seg):
            mean[k] = seg.sum() / len(seg)
            qv[:, k], high[k] = _order_statistics(seg, qs)
    out = pd.DataFrame({"frames": frames, "answered": answered, "mean_s": mean, "max_s": high})
    for name, column in zip(quantile_columns(qs), qv, strict=True):
        out[name] = column
    if starts is not None:
        out.insert(0, "time", pd.Series(starts).dt.tz_localize("UTC"))
    return out
