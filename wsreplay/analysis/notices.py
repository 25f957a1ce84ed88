"""Browser notices (``/ws/client/``): how many, of which level or type, and the most frequent ones.

authentik pushes notices to every open ``/ws/client/`` connection (the browser
sends nothing). Every counted row is a ``message`` event sent by authentik on
the ``client`` endpoint; one notice reaching three browsers counts three
times (one frame per connection). Frames that did not decode are counted under
the label ``"(none)"`` (as are notices without the grouping field, e.g. the
``level`` of a ``session.authenticated`` frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import pandas as pd

from ..exceptions import ConfigurationError
from ._common import is_value, require, require_decoded
from ._engine import accepts_dask

__all__ = ["notice_frequency", "top_messages", "NOTICE_COLUMNS", "NONE_LABEL"]

#: Columns the notice functions read.
NOTICE_COLUMNS: Final = ("ts", "endpoint", "event", "direction", "message_type", "level", "message")
#: Label of rows whose grouping field is null.
NONE_LABEL: Final = "(none)"


def _client_frames(frames: pd.DataFrame, fn: str, columns: Sequence[str]) -> pd.DataFrame:
    require(frames, ("ts", "endpoint", "event", "direction", *columns), fn)
    require_decoded(frames, "message_type", "client", fn)
    mask = is_value(frames["endpoint"], "client") & is_value(frames["event"], "message")
    mask &= is_value(frames["direction"], "to_peer")
    return frames.loc[mask, ["ts", *columns]]


def _label(series: pd.Series) -> pd.Series:
    return series.astype("str").fillna(NONE_LABEL)


@accepts_dask("notice_frequency")
def notice_frequency(
    frames: pd.DataFrame,
    /,
    *,
    freq: str | pd.Timedelta = "1min",
    by: str | None = "level",
) -> pd.DataFrame:
    """Counts of notice frames per time bin, one column per level (or message type).

    Parameters
    ----------
    frames : pandas.DataFrame
        Frames as returned by :func:`wsreplay.load`. Not modified.
    freq : str or Timedelta
        Bin width (``"1min"``, ``"1h"``...); bins start on multiples of it.
    by : str, optional
        ``"level"`` (default), ``"message_type"``, ``"tags"``, ``"message"``,
        or ``None`` for one ``frames`` column.

    Returns
    -------
    pandas.DataFrame
        Index ``time`` (datetime64[ns, UTC], every bin from the first to the
        last notice, empty ones included), one int column per value of *by*
        (sorted; ``"(none)"`` for null), counts of frames.

    Examples
    --------
    >>> frames = wsreplay.load("sample_captures/incident")  # authentik restarts at 00:15
    >>> frames.pipe(wsreplay.notice_frequency, freq="5min", by="level")  # doctest: +NORMALIZE_WHITESPACE
    level                      success  warning
    time
    2026-01-01 00:10:00+00:00        0        3
    2026-01-01 00:15:00+00:00        3        0
    """
    cols = [] if by is None else [by]
    client = _client_frames(frames, "notice_frequency", cols)
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"freq={freq!r} is not a pandas frequency ('1min', '1h', ...)") from exc
    if client.empty:
        empty = pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="time"), dtype=np.int64)
        if by is None:
            empty["frames"] = pd.Series(dtype=np.int64)
        return empty
    bins = client["ts"].dt.floor(offset)
    key = _label(client[by]) if by is not None else pd.Series("frames", index=client.index)
    counts = pd.crosstab(bins.to_numpy(), key.to_numpy())
    full = pd.date_range(bins.min(), bins.max(), freq=offset, name="time")
    out = counts.reindex(full, fill_value=0).astype(np.int64)
    out.columns = pd.Index([str(c) for c in out.columns], name=by)
    return out


@accepts_dask("top_messages")
def top_messages(
    frames: pd.DataFrame,
    /,
    *,
    n: int = 10,
    by: Sequence[str] = ("message_type", "level", "message"),
) -> pd.DataFrame:
    """The most frequent notices.

    Parameters
    ----------
    frames : pandas.DataFrame
        Frames as returned by :func:`wsreplay.load`. Not modified.
    n : int
        How many rows to return (all when ``n <= 0``).
    by : sequence of str
        The fields that make two notices the same.

    Returns
    -------
    pandas.DataFrame
        Most frequent first, with the *by* columns (str, ``"(none)"`` for
        null), ``frames`` (int), ``first_seen`` and ``last_seen``
        (datetime64[ns, UTC]).
    """
    keys = list(by)
    if not keys:
        raise ConfigurationError("top_messages needs at least one column in by=")
    client = _client_frames(frames, "top_messages", keys)
    labelled = pd.DataFrame({k: _label(client[k]) for k in keys})
    labelled["ts"] = client["ts"].to_numpy()
    grouped = labelled.groupby(keys, observed=True, sort=False)["ts"]
    out = pd.DataFrame({"frames": grouped.size(), "first_seen": grouped.min(), "last_seen": grouped.max()})
    out = out.reset_index().sort_values(["frames", "first_seen"], ascending=[False, True], ignore_index=True)
    out["frames"] = out["frames"].astype(np.int64)
    return out.head(n) if n > 0 else out
