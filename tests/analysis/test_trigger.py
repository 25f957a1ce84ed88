"""TRIGGER_UPDATE fan-out per outpost."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_support import Capture, at

from wsreplay.analysis import trigger_fanout


def test_each_connection_of_a_push_and_the_ones_that_missed_it(cap: Capture):
    a = cap.outpost("pk", "A").open(0).hellos(0, 60)
    b = cap.outpost("pk", "B").open(0).hellos(0, 60)
    quiet = cap.outpost("pk", "C").open(0)  # open, never said HELLO, missed the first push
    other = cap.outpost("pk2", "D").open(0).hellos(0, 60)
    a.trigger(20.11)
    b.trigger(20.28)
    a.trigger(40.1)
    b.trigger(40.2)
    quiet.trigger(40.3)
    other.trigger(50)
    f = trigger_fanout(cap.frames())
    assert list(f.columns) == ["outpost_uuid", "push", "push_ts", "conn_id", "instance_uuid", "ts", "delay_s"]
    first = f[(f["outpost_uuid"] == "pk") & (f["push"] == 0)]
    assert first["push_ts"].unique().tolist() == [at(20.11)]
    assert first["delay_s"].round(6).tolist()[:2] == [0.0, 0.17]
    assert np.isnan(first["delay_s"].iloc[2]) and first["ts"].isna().iloc[2]
    second = f[(f["outpost_uuid"] == "pk") & (f["push"] == 1)]
    assert len(second) == 3 and second["delay_s"].round(6).tolist() == [0.0, 0.1, 0.2]
    d = f[f["outpost_uuid"] == "pk2"]
    assert d["instance_uuid"].tolist() == ["D"] and d["push"].tolist() == [0]


def test_window_splits_pushes(cap: Capture):
    a = cap.outpost("pk", "A").open(0).hellos(0, 30)
    a.trigger(10).trigger(10.5)
    assert trigger_fanout(cap.frames())["push"].nunique() == 1
    assert trigger_fanout(cap.frames(), window=0.2)["push"].tolist() == [0, 1]


def test_no_trigger_no_rows(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 30)
    out = trigger_fanout(cap.frames())
    assert out.empty and "delay_s" in out.columns
    with pytest.raises(ValueError, match="window"):
        trigger_fanout(cap.frames(), window=0)
