"""HELLO intervals."""

from __future__ import annotations

import numpy as np
from analysis_support import Capture, at

from wsreplay.analysis import hello_intervals


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
