"""Shared plumbing of the analysis functions: column checks, fast column access, windows.

Everything here works on numpy arrays taken from the frames DataFrame without
copying the frame: categorical columns are read through their integer codes,
timestamps as int64 nanoseconds. Nothing here mutates its input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import numpy as np
import pandas as pd

from ..exceptions import CaptureFormatError, ConfigurationError, UndecodedFramesError
from ..protocol import HELLO_INTERVAL_S
from ..timeutil import TimeLike, to_ns
from ._native import kernels, parts

__all__ = [
    "NS",
    "NO_TIME",
    "TimeLike",
    "IntervalLike",
    "require",
    "require_decoded",
    "Codes",
    "codes",
    "is_value",
    "is_in",
    "notna",
    "ts_ns",
    "is_sorted",
    "to_ns",
    "seconds",
    "window",
    "SpanLike",
    "parse_error_count",
    "labels",
    "categorical",
    "categorical_take",
    "utc",
]

NS: Final = 1_000_000_000
#: Stand-in for "no time" in int64 nanosecond arrays (larger than any timestamp).
NO_TIME: Final = np.iinfo(np.int64).max

IntervalLike = float | int | str | timedelta | pd.Timedelta | None


def require(frames: pd.DataFrame, needed: Iterable[str], fn: str) -> None:
    """Raise a one-line error when *frames* lacks columns *fn* needs."""
    if not isinstance(frames, pd.DataFrame):
        raise ConfigurationError(f"{fn}() takes the frames DataFrame (wsreplay.load), not {type(frames).__name__}")
    missing = [c for c in needed if c not in frames.columns]
    if missing:
        raise CaptureFormatError(
            f"{fn}() needs the column(s) {missing}; load them with "
            f"wsreplay.load(path, columns=wsreplay.analysis.COLUMNS_NEEDED[{fn!r}])"
        )


def require_decoded(frames: pd.DataFrame, column: str, endpoint: str, fn: str) -> None:
    """Raise :class:`UndecodedFramesError` when *endpoint*'s messages were never decoded.

    A recorded capture gives every message of the endpoint either its parsed
    *column* (``instruction_name``, ``message_type``) or a ``parse_error``.
    Frames where no message has either, but which carry payloads (or say that
    nothing failed to decode), were built by hand or converted without the
    decoder: analysing them would silently find nothing. Cheap when *column*
    has any value (the usual case: one pass over its integer codes).
    """
    if column not in frames.columns or "event" not in frames.columns or notna(frames[column]).any():
        return
    msg = is_value(frames["event"], "message")
    if "endpoint" in frames.columns:
        msg &= is_value(frames["endpoint"], endpoint)
    if not msg.any():
        return
    if "parse_error" in frames.columns and notna(frames["parse_error"])[msg].any():
        return  # decoded, and failed: counted as parse errors
    payloads = [c for c in ("payload", "payload_bytes") if c in frames.columns]
    if not any(notna(frames[c])[msg].any() for c in payloads) and "parse_error" not in frames.columns:
        return  # nothing says whether they were decoded
    raise UndecodedFramesError(
        f"{fn}(): {int(msg.sum())} {endpoint} message(s) carry no parsed {column!r} (nor a parse_error): "
        "the frames were not decoded; wsreplay.save(frames, path) decodes them from 'payload', "
        "then analyse wsreplay.load(path)"
    )


@dataclass(frozen=True)
class Codes:
    """Integer codes of a column (``-1`` for null) and the values they stand for."""

    codes: np.ndarray
    categories: pd.Index

    def code_of(self, value: Any) -> int:
        """The code of *value*, or ``-2`` (matches nothing) when it never occurs."""
        try:
            loc = self.categories.get_loc(value)
        except KeyError:
            return -2
        return int(loc) if isinstance(loc, (int, np.integer)) else -2

    def values(self, idx: np.ndarray) -> np.ndarray:
        """Values (object array, ``None`` for null) of the codes *idx*."""
        cats = np.asarray(self.categories, dtype=object)
        idx = np.asarray(idx)
        out = np.empty(len(idx), dtype=object)
        ok = idx >= 0
        out[ok] = cats[idx[ok]]
        out[~ok] = None
        return out


def codes(series: pd.Series) -> Codes:
    """Integer codes of *series* (categorical or not), ``-1`` for null."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return Codes(np.asarray(series.array.codes), series.cat.categories)
    c, uniques = pd.factorize(series, use_na_sentinel=True)
    return Codes(np.asarray(c), pd.Index(uniques))


def is_value(series: pd.Series, value: Any) -> np.ndarray:
    """Boolean mask ``series == value`` (null is never equal), fast on categoricals."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        c = codes(series)
        return c.codes == c.code_of(value)
    return np.asarray(series.eq(value).fillna(False), dtype=bool)


def is_in(series: pd.Series, values: Sequence[Any]) -> np.ndarray:
    """Boolean mask ``series.isin(values)``, fast on categoricals."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        c = codes(series)
        wanted = [c.code_of(v) for v in values]
        return np.isin(c.codes, [w for w in wanted if w >= 0])
    return np.asarray(series.isin(list(values)), dtype=bool)


def notna(series: pd.Series) -> np.ndarray:
    """Boolean mask of non-null values."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return np.asarray(series.array.codes) >= 0
    return np.asarray(series.notna(), dtype=bool)


def ts_ns(frames: pd.DataFrame) -> np.ndarray:
    """The ``ts`` column as int64 nanoseconds since the epoch (UTC)."""
    ts = frames["ts"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype) and not pd.api.types.is_datetime64_dtype(ts.dtype):
        raise CaptureFormatError(f"column 'ts' has dtype {ts.dtype}; expected datetime64[ns, UTC] (wsreplay.load)")
    if ts.dt.unit != "ns":
        ts = ts.dt.as_unit("ns")
    return np.asarray(ts.array.asi8 if hasattr(ts.array, "asi8") else ts.to_numpy().view("i8"), dtype=np.int64)


_UTC: Final = pd.DatetimeTZDtype("ns", "UTC")


def utc(ns: np.ndarray, *, owned: bool = False) -> pd.DatetimeIndex:
    """int64 nanoseconds -> tz-aware UTC timestamps (``NaT`` for :data:`NO_TIME`).

    ``owned=True``: *ns* is a new array no one else holds, so :data:`NO_TIME`
    is replaced by ``NaT`` in it instead of in a copy (pandas copies it once more
    to make it tz-aware).
    """
    arr = np.asarray(ns, dtype=np.int64)
    missing = arr == NO_TIME
    if missing.any():
        if not owned:
            arr = arr.copy()
        arr[missing] = np.iinfo(np.int64).min  # NaT
    # naive UTC values read as UTC: the same as tz_localize("UTC"), in one copy instead of two
    return pd.DatetimeIndex(arr.view("M8[ns]"), dtype=_UTC)


def seconds(value: IntervalLike, name: str) -> float | None:
    """A duration argument (seconds, ``"10s"``, Timedelta) as positive float seconds."""
    if value is None:
        return None
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            s = float(value)
        else:
            s = pd.Timedelta(value).total_seconds()
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{name}={value!r} is not a duration (seconds, '10s' or a Timedelta)") from exc
    if not np.isfinite(s) or s <= 0:
        raise ConfigurationError(f"{name} must be a positive duration, not {value!r}")
    return s


SpanLike = tuple[TimeLike, TimeLike] | None


def is_sorted(ts: np.ndarray) -> bool:
    """Whether int64 *ts* never decreases (in C without a temporary, when the kernels were compiled)."""
    if kernels is not None:
        return kernels.is_sorted(np.ascontiguousarray(ts, dtype=np.int64))
    return len(ts) < 2 or bool((ts[1:] >= ts[:-1]).all())


def window(ts: np.ndarray, start: TimeLike, end: TimeLike, span: SpanLike = None) -> tuple[int, int]:
    """The analysis window ``[w0, w1]`` in ns: the capture's span clipped by *start* / *end*.

    The capture's span runs from its first to its last event; time outside it
    was not observed, so *start* / *end* can only narrow it. *span* gives the
    span of the whole capture when *ts* are the timestamps of only a part of
    it (some outposts): every part is then judged over the same window, so
    that the parts add up to the analysis of the whole
    (:func:`wsreplay.store.span.capture_span` reads it from the files).
    """
    s, e = to_ns(start, "start"), to_ns(end, "end")
    if s is not None and e is not None and e <= s:
        raise ConfigurationError(f"end ({end}) must be after start ({start})")
    if span is not None:
        try:
            first_v, last_v = span
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"span must be a (first, last) pair of times, not {span!r}") from exc
        first_n, last_n = to_ns(first_v, "span"), to_ns(last_v, "span")
        if first_n is None or last_n is None or last_n < first_n:
            raise ConfigurationError(f"span must be a (first, last) pair of times with last >= first, not {span!r}")
        first, last = first_n, last_n
    elif len(ts) == 0:
        return (s or 0, e or 0)
    elif kernels is not None and is_sorted(ts):
        first, last = int(ts[0]), int(ts[-1])  # loaded frames are in time order: one pass, not two
    else:
        first, last = int(ts.min()), int(ts.max())
    w0 = first if s is None else max(first, s)
    w1 = last if e is None else min(last, e)
    return w0, max(w0, w1)


def parse_error_count(frames: pd.DataFrame) -> int:
    """Rows whose frame did not decode cleanly (``parse_error`` set)."""
    if "parse_error" not in frames.columns:
        return 0
    return int(notna(frames["parse_error"]).sum())


def categorical(idx: np.ndarray, categories: pd.Index) -> pd.Categorical[Any]:
    """A Categorical of the codes *idx* (``-1``: null) keeping only the categories used."""
    idx = np.asarray(idx)
    n = len(categories)
    if n == 0:
        return pd.Categorical.from_codes(np.full(len(idx), -1, dtype=np.int8), dtype=pd.CategoricalDtype([]))
    valid = idx >= 0
    all_valid = bool(valid.all())
    used = np.bincount(idx if all_valid else idx[valid], minlength=n).astype(bool)
    return _used_categorical(idx, used, categories)


def categorical_take(codes: np.ndarray, positions: np.ndarray, categories: pd.Index) -> pd.Categorical[Any]:
    """``categorical(codes[positions], categories)``, in one pass in C when the kernels were compiled."""
    if kernels is None or len(categories) == 0:
        return categorical(codes[positions], categories)
    codes = np.ascontiguousarray(codes)
    idx = np.empty(len(positions), dtype=codes.dtype)
    used = np.zeros(len(categories), dtype=np.bool_)
    kernels.take_codes(codes, np.ascontiguousarray(positions, dtype=np.int64), idx, used, parts(len(idx)))
    return _used_categorical(idx, used, categories)


def _used_categorical(idx: np.ndarray, used: np.ndarray, categories: pd.Index) -> pd.Categorical[Any]:
    """The Categorical of codes *idx* with the categories *used* (bool per category) only."""
    n = len(categories)
    kept = int(used.sum())
    small = np.int8 if kept < 127 else np.int16 if kept < 32_767 else np.int32
    if kept == n:  # every category used: the codes stand as they are
        return pd.Categorical.from_codes(idx.astype(small, copy=False), dtype=pd.CategoricalDtype(categories))
    # new code of each old code; the extra last entry maps -1 (null) to -1
    remap = np.empty(n + 1, dtype=small)
    remap[:n] = np.cumsum(used) - 1
    remap[n] = -1
    return pd.Categorical.from_codes(remap[idx], dtype=pd.CategoricalDtype(categories[used]))


def labels(values: np.ndarray) -> pd.Series:
    """An object array of strings (``None`` for null) as a pandas string Series."""
    return pd.Series(values, dtype="str")


#: Default expected HELLO interval when nothing can be inferred (authentik's).
DEFAULT_INTERVAL_S: Final = HELLO_INTERVAL_S
