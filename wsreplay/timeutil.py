"""Time arguments as users give them (ISO 8601, datetime, Timestamp, epoch seconds), in UTC.

One parser for every ``start=`` / ``end=`` option of the package (load, analysis,
replay), so they all accept the same things and refuse the rest alike.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from .exceptions import ConfigurationError

__all__ = ["TimeLike", "to_timestamp", "to_ns"]

TimeLike = str | datetime | pd.Timestamp | int | float | None


def to_timestamp(value: TimeLike, name: str) -> pd.Timestamp | None:
    """*value* as a UTC :class:`pandas.Timestamp` (naive times are UTC; numbers are epoch seconds).

    Raises
    ------
    ConfigurationError
        If *value* is not a time; the message names the option *name*.
    """
    if value is None:
        return None
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ts = pd.Timestamp(value, unit="s", tz="UTC")
        else:
            ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ConfigurationError(f"{name}={value!r} is not a time (use ISO 8601, a datetime or a Timestamp)") from exc
    if ts is pd.NaT:
        raise ConfigurationError(f"{name}={value!r} is not a time")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def to_ns(value: TimeLike, name: str) -> int | None:
    """*value* as UTC nanoseconds since the epoch (see :func:`to_timestamp`)."""
    ts = to_timestamp(value, name)
    return None if ts is None else int(ts.as_unit("ns").value)
