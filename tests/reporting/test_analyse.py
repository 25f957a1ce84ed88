"""A capture analysed in outpost groups gives the report the same numbers as one pass."""

from __future__ import annotations

import contextlib

import pandas as pd
import pytest

from wsreplay.reporting.analyse import analyse_capture


def _step(_name):
    return contextlib.nullcontext()


OPTS = {"policy": "observed", "factor": 1.5, "interval": None, "start": None, "end": None}


@pytest.fixture(scope="module")
def both(capture):
    path, _ = capture
    whole = analyse_capture(path, OPTS, hello_limit=10**9, chunk_rows=10**9, step=_step)
    grouped = analyse_capture(path, OPTS, hello_limit=10**9, chunk_rows=250, step=_step)
    return whole, grouped


def test_groups_are_used(both):
    whole, grouped = both
    assert whole.chunks == 1 and grouped.chunks == 3
    assert grouped.hello is None and whole.hello is not None


def test_same_outages_uptime_fleet_and_latency(both):
    whole, grouped = both
    cols = ["outpost_uuid", "instance_uuid", "start", "end", "duration_s", "cause"]
    pd.testing.assert_frame_equal(whole.outages[cols], grouped.outages[cols])
    assert whole.instance_outages == grouped.instance_outages
    pd.testing.assert_frame_equal(whole.fleet, grouped.fleet)
    pd.testing.assert_frame_equal(whole.restarts, grouped.restarts)
    up_cols = ["outpost_uuid", "down_s", "outages", "longest_outage_s"]
    pd.testing.assert_frame_equal(whole.uptime[up_cols], grouped.uptime[up_cols])
    pd.testing.assert_series_equal(whole.uptime["uptime"], grouped.uptime["uptime"], atol=1e-3)
    pd.testing.assert_frame_equal(whole.overall, grouped.overall)
    pd.testing.assert_frame_equal(whole.over_time, grouped.over_time)

    def by_outpost(df):
        return df.astype({"outpost_uuid": str}).sort_values("outpost_uuid", ignore_index=True)

    pd.testing.assert_frame_equal(by_outpost(whole.per_outpost), by_outpost(grouped.per_outpost))
    pd.testing.assert_frame_equal(whole.notices, grouped.notices)


def test_same_summary(both):
    whole, grouped = both
    assert grouped.summary == whole.summary
