"""Frames that did not decode are counted and reported, never fatal."""

from __future__ import annotations

import pandas as pd
from analysis_support import Capture

import wsreplay
from wsreplay.analysis import parse_errors


def _bad(cap: Capture) -> pd.DataFrame:
    c = cap.outpost("pk", "A").open(0).hellos(0, 30)
    c.send(31, "to_server", "not json").send(32, "to_server", "not json").send(33, "to_server", b"\x00\x01")
    c.close(33.1, code=1006)
    cap.client().open(0).send(5, "to_peer", "[1, 2]")
    return cap.frames()


def test_parse_errors_are_grouped(cap: Capture):
    p = parse_errors(_bad(cap))
    assert list(p.columns) == [
        "endpoint",
        "direction",
        "parse_error",
        "frames",
        "connections",
        "first_seen",
        "last_seen",
    ]
    assert p["frames"].sum() == 4 and p.iloc[0]["frames"] == 2
    assert p.iloc[0]["endpoint"] == "outpost" and p.iloc[0]["connections"] == 1
    assert set(p["endpoint"]) == {"outpost", "client"}


def test_every_analysis_runs_over_bad_frames_and_reports_them(cap: Capture):
    frames = _bad(cap)
    for fn in (wsreplay.outages, wsreplay.uptime, wsreplay.ack_latency):
        assert fn(frames).attrs["parse_errors"] == 4
    for fn in (
        wsreplay.hello_intervals,
        wsreplay.fleet,
        wsreplay.notice_frequency,
        wsreplay.top_messages,
        wsreplay.trigger_fanout,
        wsreplay.restarts,
        wsreplay.latency_percentiles,
    ):
        assert isinstance(fn(frames), pd.DataFrame)
    assert wsreplay.ack_latency(frames)["latency_s"].notna().all()


def test_clean_capture_has_no_parse_errors(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 30)
    assert parse_errors(cap.frames()).empty
