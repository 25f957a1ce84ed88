"""HELLO intervals."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_support import Capture, at
from hypothesis import given, settings
from hypothesis import strategies as st

from wsreplay.analysis import hello_intervals
from wsreplay.analysis.hello import _run_medians

pytestmark = pytest.mark.usefixtures("implementation")  # the C kernels and their numpy versions


def test_gaps_per_instance_and_reconnects(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 30).error(31)
    cap.outpost("pk", "A").open(33).hellos(35, 50)
    cap.outpost("pk", "B").open(0).hellos(1, 20, every=5)
    h = hello_intervals(cap.frames())
    assert list(h.columns) == ["outpost_uuid", "instance_uuid", "conn_id", "ts", "interval_s", "reconnected"]
    a = h[h["instance_uuid"] == "A"]
    assert np.isnan(a["interval_s"].iloc[0])
    assert a["interval_s"].tolist()[1:] == [10.0, 10.0, 15.0, 10.0]
    assert a["reconnected"].tolist() == [False, False, False, True, False]
    assert a["ts"].tolist()[-1] == at(45)
    assert h[h["instance_uuid"] == "B"]["interval_s"].tolist()[1:] == [5.0, 5.0, 5.0]


def test_an_old_outpost_named_only_in_its_hello_is_followed(cap: Capture):
    c = cap.outpost("pk", None).open(0)  # no instance_uuid query parameter
    c.hellos(0, 30, uuid="OLD")
    h = hello_intervals(cap.frames())
    assert h["instance_uuid"].tolist() == ["OLD"] * 3


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.integers(-(2**53), 2**53), min_size=1, max_size=40), max_size=30))
def test_run_medians_equal_numpy_median(runs):
    # the median per instance behind the base interval, against np.median
    values = np.array([v for run in runs for v in run], dtype=np.int64)
    starts = np.cumsum([0] + [len(run) for run in runs[:-1]]).astype(np.int64)[: len(runs)]
    got = _run_medians(values, starts)
    want = np.array([np.median(np.array(run, dtype=np.float64)) for run in runs])
    np.testing.assert_array_equal(got, want)


def test_run_medians_of_long_runs_with_many_ties_are_exact():
    rng = np.random.default_rng(5)
    runs = [rng.integers(0, k, n) * 10**9 for k, n in [(1, 5000), (3, 100_001), (50, 200_000), (10**9, 77_777)]]
    runs.append(np.sort(rng.integers(0, 10**12, 100_000)))  # sorted and reversed runs
    runs.append(np.sort(rng.integers(0, 10**12, 100_000))[::-1].copy())
    values = np.concatenate(runs)
    starts = np.cumsum([0] + [len(r) for r in runs[:-1]]).astype(np.int64)
    np.testing.assert_array_equal(_run_medians(values, starts), [np.median(r) for r in runs])
