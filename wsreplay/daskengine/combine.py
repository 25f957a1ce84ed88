"""Combining the pandas results of the partitions into the result of one pass.

Per-outpost results concatenate; the rows are then put in the order the
function documents (its sort keys, ties between outposts in outpost order,
as the single pass breaks them), categorical columns get the union of the
partitions' categories (sorted: a partition sees only its own part of the
capture's dictionaries), and counters in ``attrs`` are summed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["concat_results", "sort_rows"]


def _union_categories(parts: Sequence[pd.DataFrame]) -> list[pd.DataFrame]:
    cat_cols = [c for c in parts[0].columns if isinstance(parts[0][c].dtype, pd.CategoricalDtype)]
    if not cat_cols:
        return list(parts)
    dtypes: dict[str, pd.CategoricalDtype] = {}
    for col in cat_cols:
        values: set[Any] = set()
        ordered = False
        for p in parts:
            dt = p[col].dtype
            if isinstance(dt, pd.CategoricalDtype):
                values.update(dt.categories)
                ordered = ordered or bool(dt.ordered)
        dtypes[col] = pd.CategoricalDtype(sorted(values), ordered=ordered)

    # set_categories, not astype: unordered dtypes with the same values in another order compare equal,
    # and astype then keeps the old order
    def conform(s: pd.Series, dtype: pd.CategoricalDtype) -> pd.Series:
        if isinstance(s.dtype, pd.CategoricalDtype):
            return s.cat.set_categories(dtype.categories)
        return s.astype(dtype)

    return [p.assign(**{c: conform(p[c], dtypes[c]) for c in cat_cols if c in p.columns}) for p in parts]


def _merge_attrs(parts: Sequence[pd.DataFrame]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for p in parts:
        for key, value in p.attrs.items():
            if key in out and isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                out[key] = out[key] + value
            else:
                out.setdefault(key, value)
    return out


def concat_results(parts: Sequence[pd.DataFrame], *, keep_categories: Sequence[str] = ()) -> pd.DataFrame:
    """Concatenate per-partition results (categories unified, attrs counters summed).

    *keep_categories* name categorical columns whose categories are a fixed
    vocabulary the function sets itself (e.g. ``cause``): left as they are.
    """
    if not parts:
        raise ValueError("no partition results to combine")
    attrs = _merge_attrs(parts)
    nonempty = [p for p in parts if len(p)]
    if not nonempty:
        out = parts[0].iloc[0:0].copy()
    else:
        fixed = set(keep_categories)
        unify = [p.drop(columns=[c for c in fixed if c in p.columns]) for p in nonempty]
        unified = _union_categories(unify)
        rebuilt = [
            u.assign(**{c: p[c] for c in fixed if c in p.columns})[list(p.columns)]
            for u, p in zip(unified, nonempty, strict=True)
        ]
        out = pd.concat(rebuilt, ignore_index=True) if len(rebuilt) > 1 else rebuilt[0].reset_index(drop=True)
    out.attrs = attrs
    return out


def sort_rows(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """*frame* stably sorted by *keys* (categorical keys by their values, as strings)."""
    keys = [k for k in keys if k in frame.columns]
    if not keys or len(frame) < 2:
        return frame.reset_index(drop=True)
    cols = {}
    for k in keys:
        s = frame[k]
        cols[k] = s.astype("str") if isinstance(s.dtype, pd.CategoricalDtype) else s
    order = pd.DataFrame(cols).reset_index(drop=True)
    idx = order.sort_values(keys, kind="stable", na_position="last").index.to_numpy()
    out = frame.take(idx).reset_index(drop=True)
    out.attrs = frame.attrs
    return out
