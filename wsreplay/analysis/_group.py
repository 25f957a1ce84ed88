"""Fast group-wise primitives over numpy arrays (no Python loop per row).

Rows are grouped by small integer codes (connection, instance, outpost). A
stable sort by code gathers each group's rows, in time order, into one
contiguous run; running sums and maxima then restart at each run's first row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._native import kernels

__all__ = ["group_order", "run_starts", "group_cumsum", "group_cummax", "scatter_order", "code_extent"]

_U16 = 1 << 16


def group_order(codes: np.ndarray) -> np.ndarray:
    """Indices that stably sort *codes* (non-negative ints): a radix sort on 16-bit keys."""
    codes = np.asarray(codes)
    if len(codes) == 0:
        return np.zeros(0, dtype=np.intp)
    top = int(codes.max())
    if top < _U16:
        return np.argsort(codes.astype(np.uint16), kind="stable")
    if top < _U16 * _U16:
        c = codes.astype(np.int64)
        low = np.argsort((c & 0xFFFF).astype(np.uint16), kind="stable")
        high = np.argsort((c[low] >> 16).astype(np.uint16), kind="stable")
        return low[high]
    return np.argsort(codes, kind="stable")


def run_starts(sorted_codes: np.ndarray) -> np.ndarray:
    """Boolean mask of the first row of each run of equal codes."""
    first = np.ones(len(sorted_codes), dtype=bool)
    if len(sorted_codes) > 1:
        np.not_equal(sorted_codes[1:], sorted_codes[:-1], out=first[1:])
    return first


def group_cumsum(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Running sum of int *values* restarting at each run (``first`` from :func:`run_starts`)."""
    c = np.cumsum(values, dtype=np.int64)
    starts = np.flatnonzero(first)
    if len(starts) <= 1:
        return c
    before = np.zeros(len(starts), dtype=np.int64)
    before[1:] = c[starts[1:] - 1]
    lengths = np.diff(np.append(starts, len(values)))
    return c - np.repeat(before, lengths)


def group_cummax(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Running maximum of int64 *values* restarting at each run (a new array).

    One pass in C when the kernels were compiled (:mod:`wsreplay.analysis._native`),
    else :func:`_group_cummax_numpy`.
    """
    if kernels is None or values.dtype != np.int64 or first.dtype != np.bool_:
        return _group_cummax_numpy(values, first)
    out = np.array(values, dtype=np.int64, order="C")
    kernels.group_cummax(out, np.ascontiguousarray(first))
    return out


def _group_cummax_numpy(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """:func:`group_cummax` in numpy: each run offset above the previous one, then one running maximum."""
    n = len(values)
    if n == 0:
        return values.copy()
    rank = np.cumsum(first, dtype=np.int64)
    rank -= 1
    lo = int(values.min())
    span = int(values.max()) - lo + 1
    if span < (1 << 62) and int(rank[-1]) * span < (1 << 62):
        # offset each run above the previous one, then one running maximum (in place)
        rank *= span
        out = values - lo
        out += rank
        np.maximum.accumulate(out, out=out)
        out -= rank
        out += lo
        return out
    return pd.Series(values).groupby(rank, sort=False).cummax().to_numpy(dtype=np.int64)


def scatter_order(mask: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """For rows at *positions* (all within *mask*), their rank among the true rows of *mask*.

    Lets results computed in group order be written back in row (time) order
    without sorting.
    """
    rank = np.cumsum(mask, dtype=np.int64) - 1
    return rank[positions]


def code_extent(codes: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per code ``0 .. n-1``: the smallest and the largest of its *values* (int64; one pass, no sort).

    A code with no row keeps the int64 maximum as its smallest value and the
    minimum as its largest. *codes* must be non-negative.
    """
    low = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    high = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(low, codes, values)
    np.maximum.at(high, codes, values)
    return low, high
