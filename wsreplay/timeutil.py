"""Time arguments as users give them (ISO 8601, datetime, Timestamp, epoch seconds), in UTC.

One parser for every ``start=`` / ``end=`` option of the package (load, analysis,
replay), so they all accept the same things and refuse the rest alike.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from .exceptions import ConfigurationError

__all__ = ["TimeLike", "to_timestamp", "to_ns", "iso_to_ns"]

TimeLike = str | datetime | pd.Timestamp | int | float | None


def _parse(value: str | datetime | pd.Timestamp | int | float) -> pd.Timestamp:
    """*value* as a UTC Timestamp (naive times are UTC; numbers are epoch seconds); ``ValueError`` if it is not one."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ts = pd.Timestamp(value, unit="s", tz="UTC")
        else:
            ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"{value!r} is not a time") from exc
    if ts is pd.NaT:
        raise ValueError(f"{value!r} is not a time")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


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
        return _parse(value)
    except ValueError as exc:
        raise ConfigurationError(f"{name}={value!r} is not a time (use ISO 8601, a datetime or a Timestamp)") from exc


def to_ns(value: TimeLike, name: str) -> int | None:
    """*value* as UTC nanoseconds since the epoch (see :func:`to_timestamp`)."""
    ts = to_timestamp(value, name)
    return None if ts is None else int(ts.as_unit("ns").value)


def iso_to_ns(text: object) -> int:
    """An ISO 8601 date-time *string* (``2026-11-28T04:06:03.123Z``) as epoch nanoseconds; naive means UTC.

    The same parser as :func:`to_timestamp`, for times read from files
    (HAR, tshark), where only a string is a valid value.

    Raises
    ------
    ValueError
        If *text* is not a non-empty string holding a date-time.

    Examples
    --------
    >>> iso_to_ns("1970-01-01T00:00:01.5+00:00")
    1500000000
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"{text!r} is not an ISO 8601 date-time")
    try:
        return int(_parse(text).as_unit("ns").value)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date-time") from None
