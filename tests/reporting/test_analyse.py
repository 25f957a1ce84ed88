"""A capture analysed in outpost groups gives the report the same numbers as one pass."""

from __future__ import annotations

import contextlib

import pandas as pd
import pytest
from analysis_support import Capture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wsreplay
from wsreplay.reporting.analyse import analyse_capture
from wsreplay.sim import Scenario, simulate_virtual


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


def _parts_equal(whole, grouped):
    cols = ["outpost_uuid", "instance_uuid", "start", "end", "duration_s", "cause", "ongoing"]
    pd.testing.assert_frame_equal(whole.outages[cols], grouped.outages[cols])
    assert whole.instance_outages == grouped.instance_outages
    pd.testing.assert_frame_equal(whole.uptime, grouped.uptime, check_exact=False, atol=1e-9)
    pd.testing.assert_frame_equal(whole.fleet, grouped.fleet)
    pd.testing.assert_frame_equal(whole.overall, grouped.overall)


def test_outposts_that_died_early_are_judged_over_the_capture_s_window(tmp_path):
    # issue #12: 12 outposts, four go silent early; groups are formed by frame count, so the four
    # share a group whose own window ended when they died and one pass found 4 outages, groups 1
    cap = Capture()
    for i in range(12):
        c = cap.outpost(f"pk{i:02d}", f"inst{i:02d}").open(0)
        c.hellos(0, 100 if i < 4 else 600)
    path = wsreplay.save(cap.frames(), tmp_path / "cap")
    whole = analyse_capture(path, OPTS, hello_limit=10**9, chunk_rows=10**9, step=_step)
    grouped = analyse_capture(path, OPTS, hello_limit=10**9, chunk_rows=200, step=_step)
    assert grouped.chunks > 1 and len(whole.outages) == 4
    _parts_equal(whole, grouped)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    outposts=st.integers(2, 9),
    fault_every=st.floats(20.0, 200.0),
    cuts=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=3),
)
def test_grouped_equals_one_pass_for_random_fleets_and_chunk_sizes(tmp_path_factory, seed, outposts, fault_every, cuts):
    sc = Scenario.generate(
        outposts=outposts, duration=30.0, interval=0.2, seed=seed, faults=True, fault_every=fault_every, browsers=1
    )
    path = tmp_path_factory.mktemp("fleet")
    simulate_virtual(sc, out=path, save_truth=False)
    total = len(wsreplay.load(path, columns=["ts"]))
    whole = analyse_capture(path, OPTS, hello_limit=10**9, chunk_rows=10**9, step=_step)
    for cut in (1, *(max(1, int(c * total)) for c in cuts)):
        grouped = analyse_capture(path, OPTS, hello_limit=10**9, chunk_rows=cut, step=_step)
        _parts_equal(whole, grouped)


def test_a_compacted_capture_gives_the_same_report_reading_each_group_s_buckets_only(capture, tmp_path, monkeypatch):
    path, _ = capture
    whole = analyse_capture(path, OPTS, hello_limit=10**9, chunk_rows=10**9, step=_step)
    wsreplay.compact(path, out=tmp_path / "packed", buckets=8)
    from wsreplay.store import partition
    from wsreplay.store.layout import bucket_files

    read: list[set[str]] = []
    real = partition.Partitions.table

    def spy(self, buckets, **kw):
        read.append({str(f) for b in buckets for f in self.files.get(b, [])})
        assert not self.spills  # nothing to split: every row is in the buckets
        return real(self, buckets, **kw)

    monkeypatch.setattr(partition.Partitions, "table", spy)
    grouped = analyse_capture(tmp_path / "packed", OPTS, hello_limit=10**9, chunk_rows=250, step=_step)
    assert grouped.chunks > 1
    _parts_equal(whole, grouped)
    assert grouped.summary == whole.summary
    _, files = bucket_files(tmp_path / "packed")
    assert sum(len(r) for r in read) == sum(len(fs) for fs in files.values())  # each file read once
