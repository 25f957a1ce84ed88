"""The numpy kernel of fleet-wide latency percentiles against pandas' groupby, on any data."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsreplay.analysis import latency_percentiles
from wsreplay.analysis._quantiles import fleet_percentiles

T0 = pd.Timestamp("2026-03-01 17:42:13.5", tz="UTC").value


def pandas_percentiles(lat: pd.DataFrame, freq: str | None, q: list[float]) -> pd.DataFrame:
    """What latency_percentiles(by=None) computed before the kernel: pandas' groupby."""
    frame = lat[["sent_ts", "latency_s"]]
    if freq is None:
        frame, groupers = frame.assign(_all=0), ["_all"]
    else:
        groupers = [pd.Grouper(key="sent_ts", freq=freq, label="left")]
    grouped = frame.groupby(groupers, observed=True, sort=True)["latency_s"]
    parts = {"frames": grouped.size(), "answered": grouped.count(), "mean_s": grouped.mean(), "max_s": grouped.max()}
    for x in q:
        parts[f"p{x * 100:g}_s"] = grouped.quantile(x)
    out = pd.DataFrame(parts)
    out.insert(2, "unanswered", out["frames"] - out["answered"])
    out = out.reset_index()
    return out.drop(columns="_all") if freq is None else out.rename(columns={"sent_ts": "time"})


def latencies(offsets_ms: list[int], values: list[float | None], unit: str = "ns") -> pd.DataFrame:
    sent = pd.to_datetime(np.asarray(offsets_ms, dtype=np.int64) * 10**6 + T0, utc=True).as_unit(unit)
    return pd.DataFrame({"sent_ts": sent, "latency_s": np.array([np.nan if v is None else v for v in values])})


def check(lat: pd.DataFrame, freq: str | None, q: list[float]) -> None:
    got = latency_percentiles(lat, by=None, freq=freq, q=q)
    expected = pandas_percentiles(lat, freq, q)
    quantiles = [c for c in expected.columns if c.startswith("p")]
    # quantiles, counts, maxima and times exactly; the mean to rounding (pandas sums with compensation)
    pd.testing.assert_frame_equal(got.drop(columns="mean_s"), expected.drop(columns="mean_s"), check_exact=True)
    pd.testing.assert_series_equal(got["mean_s"], expected["mean_s"], rtol=1e-12)
    assert list(got.columns) == list(expected.columns) and quantiles


rows = st.lists(
    st.tuples(
        st.integers(0, 4 * 3_600_000),
        st.one_of(st.none(), st.floats(0, 30, allow_nan=False), st.sampled_from([0.003, 0.003, 0.5])),
    ),
    min_size=1,
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(
    rows=rows,
    freq=st.sampled_from([None, "1s", "10s", "1min", "7min", "1h", "2h", "1D", "250ms"]),
    q=st.lists(st.floats(0, 1), min_size=1, max_size=4, unique=True),
    shuffle=st.booleans(),
)
def test_same_table_as_pandas_groupby(rows, freq, q, shuffle):
    offsets = [t for t, _ in rows]
    if not shuffle:
        offsets.sort()
    check(latencies(offsets, [v for _, v in rows]), freq, q)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_every_time_unit_and_empty_bins(unit):
    lat = latencies([0, 5_000, 300_000, 301_000, 3_000], [0.1, None, 0.3, None, 0.2], unit=unit)
    for freq in ["1min", "1s", "1h"]:
        check(lat, freq, [0.5, 0.9, 0.99])
    got = latency_percentiles(lat, by=None, freq="1min")
    assert got["frames"].tolist() == [3, 0, 0, 0, 0, 2] and str(got["time"].dtype) == f"datetime64[{unit}, UTC]"


def test_left_to_pandas_where_bins_are_not_fixed_lengths():
    lat = latencies([0, 86_400_000 * 9], [0.1, 0.2])
    offset = pd.tseries.frequencies.to_offset("W")
    assert fleet_percentiles([(lat["sent_ts"], lat["latency_s"].to_numpy())], offset, [0.5]) is None
    check(lat, "W", [0.5])  # still right, by pandas
    check(lat, "MS", [0.5])
    other_tz = lat.assign(sent_ts=lat["sent_ts"].dt.tz_convert("Europe/Berlin"))
    assert latency_percentiles(other_tz, by=None, freq="1D")["frames"].sum() == 2


def test_empty_and_all_unanswered():
    empty = latencies([], [])
    assert latency_percentiles(empty, by=None).empty and latency_percentiles(empty, by=None, freq="1min").empty
    lat = latencies([0, 1_000], [None, None])
    check(lat, None, [0.5])
    check(lat, "1s", [0.5])


@settings(max_examples=100, deadline=None)
@given(
    rows=rows,
    cuts=st.lists(st.integers(0, 300), max_size=6),
    freq=st.sampled_from([None, "1s", "1min", "7min", "1h"]),
    sort_pieces=st.booleans(),
)
def test_pieces_give_the_table_of_their_rows_together(rows, cuts, freq, sort_pieces):
    """A report's outpost groups, each its own piece: the same table as all the rows in one frame."""
    lat = latencies([t for t, _ in rows], [v for _, v in rows])
    bounds = sorted({0, len(lat), *(c for c in cuts if c < len(lat))})
    pieces = [lat.iloc[a:b] for a, b in itertools.pairwise(bounds)]
    if sort_pieces:
        pieces = [p.sort_values("sent_ts", kind="stable") for p in pieces]
    q = [0.5, 0.9, 0.99]
    offset = None if freq is None else pd.tseries.frequencies.to_offset(freq)
    got = fleet_percentiles([(p["sent_ts"], p["latency_s"].to_numpy()) for p in pieces], offset, q)
    assert got is not None
    got.insert(3 if freq else 2, "unanswered", got["frames"] - got["answered"])
    expected = pandas_percentiles(lat, freq, q)
    pd.testing.assert_frame_equal(got.drop(columns="mean_s"), expected.drop(columns="mean_s"), check_exact=True)
    pd.testing.assert_series_equal(got["mean_s"], expected["mean_s"], rtol=1e-12)
