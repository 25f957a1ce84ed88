"""Frames that did not decode: how many, of which kind, where.

A frame whose payload is not what authentik's protocol says (not JSON, no
``instruction``, a binary frame...) is kept in the capture with the reason in
``parse_error``. The analysis functions never fail on them: they do not count
as refreshes or requests, and each result reports how many there were in
``attrs["parse_errors"]``; this function lists them.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from ._common import notna, require
from ._engine import accepts_dask

__all__ = ["parse_errors", "PARSE_ERROR_COLUMNS"]

#: Columns :func:`parse_errors` reads (``conn_id`` is optional).
PARSE_ERROR_COLUMNS: Final = ("ts", "endpoint", "direction", "parse_error", "conn_id")


@accepts_dask("parse_errors")
def parse_errors(frames: pd.DataFrame, /) -> pd.DataFrame:
    """Frames that did not decode, grouped by endpoint, direction and reason.

    Parameters
    ----------
    frames : pandas.DataFrame
        Frames as returned by :func:`wsreplay.load`. Not modified.

    Returns
    -------
    pandas.DataFrame
        Most frequent first, with columns ``endpoint``, ``direction``,
        ``parse_error`` (str), ``frames``, ``connections`` (int),
        ``first_seen``, ``last_seen`` (datetime64[ns, UTC]).
    """
    require(frames, ("ts", "endpoint", "direction", "parse_error"), "parse_errors")
    mask = notna(frames["parse_error"])
    keys = ["endpoint", "direction", "parse_error"]
    cols = [*keys, "ts"] + (["conn_id"] if "conn_id" in frames.columns else [])
    bad = frames.loc[mask, cols]
    labelled = pd.DataFrame({k: bad[k].astype("str").fillna("(none)") for k in keys})
    labelled["ts"] = bad["ts"].to_numpy()
    labelled["conn_id"] = bad["conn_id"].astype("str").to_numpy() if "conn_id" in bad.columns else None
    g = labelled.groupby(keys, sort=False)
    out = pd.DataFrame(
        {
            "frames": g.size(),
            "connections": g["conn_id"].nunique(),
            "first_seen": g["ts"].min(),
            "last_seen": g["ts"].max(),
        }
    ).reset_index()
    if out.empty:
        out = pd.DataFrame(
            {
                **{k: pd.Series(dtype="str") for k in keys},
                "frames": pd.Series(dtype=np.int64),
                "connections": pd.Series(dtype=np.int64),
                "first_seen": pd.Series(dtype="datetime64[ns, UTC]"),
                "last_seen": pd.Series(dtype="datetime64[ns, UTC]"),
            }
        )
    out["frames"] = out["frames"].astype(np.int64)
    out["connections"] = out["connections"].astype(np.int64)
    return out.sort_values(["frames", "first_seen"], ascending=[False, True], ignore_index=True)
