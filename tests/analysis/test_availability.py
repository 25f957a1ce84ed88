"""Uptime per instance and per outpost, on literal captures."""

from __future__ import annotations

import pytest
from analysis_support import Capture, at

from wsreplay.analysis import outages, uptime

pytestmark = pytest.mark.usefixtures("implementation")  # the C kernels and their numpy versions


def test_uptime_sums_the_outages_inside_the_observed_window(cap: Capture):
    c = cap.outpost("pk", "A").open(0).hellos(0, 50)  # silent 55 .. 90
    c.hellos(90, 200).close(200, code=1006)  # capture ends at 200
    cap.outpost("pk2", "B").open(100).hellos(100, 200)  # first seen at 100
    u = uptime(cap.frames()).set_index("instance_uuid")
    a = u.loc["A"]
    assert a["observed_s"] == 200 and a["down_s"] == 35 and a["up_s"] == 165
    assert a["uptime"] == pytest.approx(165 / 200)
    assert a["outages"] == 1 and a["longest_outage_s"] == 35
    assert (a["start"], a["end"]) == (at(0), at(200))
    b = u.loc["B"]
    assert b["observed_s"] == 100 and b["down_s"] == 0 and b["uptime"] == 1.0
    assert b["outages"] == 0 and b["longest_outage_s"] == 0


def test_a_retired_instance_is_observed_until_it_shut_down(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 41).close(42, code=1000)
    cap.outpost("pk", "B").open(52).hellos(52, 100)
    frames = cap.frames()
    u = uptime(frames).set_index("instance_uuid")
    assert u.loc["A", "observed_s"] == 42 and u.loc["A", "uptime"] == 1.0
    o = uptime(frames, level="outpost").iloc[0]
    assert o["instances"] == 2 and o["down_s"] == 10 and o["outages"] == 1
    assert o["observed_s"] == pytest.approx(92.003)


def test_uptime_window_and_policy_match_outages(cap: Capture):
    c = cap.outpost("pk", "A").open(0).hellos(0, 41)
    c.error(42)
    cap.outpost("pk", "A").open(46).hellos(47, 300)
    frames = cap.frames()
    for policy in ("observed", "authentik"):
        o = outages(frames, policy=policy, start=at(10), end=at(250))
        u = uptime(frames, policy=policy, start=at(10), end=at(250)).iloc[0]
        assert u["down_s"] == pytest.approx(o["duration_s"].sum())
        assert u["observed_s"] == 240
    assert uptime(frames, policy="authentik").iloc[0]["uptime"] == 1.0


def test_uptime_columns_and_empty_input(cap: Capture):
    cap.client().open(0).notice(1, "x")
    u = uptime(cap.frames())
    assert u.empty
    assert list(u.columns) == [
        "outpost_uuid",
        "instance_uuid",
        "start",
        "end",
        "observed_s",
        "up_s",
        "down_s",
        "uptime",
        "observed_share",
        "outages",
        "longest_outage_s",
    ]


def test_uptime_says_what_share_of_the_window_each_row_was_observed(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 201)
    cap.outpost("pk2", "B").open(180).hellos(180, 201)  # first seen at the last tenth of the window
    u = uptime(cap.frames()).set_index("instance_uuid")
    assert u.loc["B", "uptime"] == 1.0 and u.loc["B", "observed_share"] == pytest.approx(20.003 / 200.003)
    assert u.loc["A", "observed_share"] == 1.0
    o = uptime(cap.frames(), level="outpost").set_index("outpost_uuid")
    assert o.loc["pk2", "observed_share"] == pytest.approx(0.1, abs=1e-4)
