"""The one time parser: user options (start=, end=) and times read from imported files agree."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from wsreplay.exceptions import ConfigurationError
from wsreplay.timeutil import iso_to_ns, to_ns, to_timestamp

T = 1_795_838_763_123_456_789  # 2026-11-28T04:06:03.123456789Z


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28T04:06:03.123456789Z",
        "2026-11-28T04:06:03.123456789+00:00",
        "2026-11-28T05:06:03.123456789+01:00",
        "2026-11-28T04:06:03.123456789",  # naive: UTC
        "2026-11-28 04:06:03.123456789",
    ],
)
def test_iso_strings_read_the_same_through_both_entry_points(text: str):
    assert iso_to_ns(text) == to_ns(text, "start") == T


def test_only_option_values_may_be_numbers_or_datetimes():
    assert to_ns(1.5, "start") == 1_500_000_000
    assert to_ns(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), "end") == 1_000_000_000
    assert to_timestamp(pd.Timestamp("2026-11-28T05:06:03+01:00"), "start") == pd.Timestamp(T - 123_456_789, tz="UTC")
    for not_a_string in (1.5, None, b"2026-11-28", datetime(2026, 11, 28)):
        with pytest.raises(ValueError, match="is not an ISO 8601 date-time"):
            iso_to_ns(not_a_string)


@pytest.mark.parametrize("text", ["", "soon", "2026-13-45", "NaT"])
def test_refusals(text: str):
    with pytest.raises(ValueError, match="is not an ISO 8601 date-time"):
        iso_to_ns(text)
    if text:
        with pytest.raises(ConfigurationError, match=f"start={text!r} is not a time"):
            to_ns(text, "start")
