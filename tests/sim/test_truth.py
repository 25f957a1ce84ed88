"""Ground truth: the outage definitions on literal timelines, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wsreplay.exceptions import CaptureNotFoundError
from wsreplay.sim import Truth
from wsreplay.sim.plan import Life
from wsreplay.sim.truth import TruthBuilder, compute_outages

START = pd.Timestamp("2026-01-01T00:00:00Z")


def life(iid: str, start: float, end: float, *, pk: str = "op", replica: int = 0, cause: str = "end") -> Life:
    return Life(0, replica, 0, pk, iid, "2023.10.0", "host", start, end, cause)


def test_instance_is_down_from_the_fault_until_its_next_hello_arrives() -> None:
    a = life("a", 0, 100)
    arrivals = {"a": np.array([1.0, 11.0, 21.0, 47.0, 57.0])}
    out = compute_outages([a], arrivals, {"a": [(25.0, "disconnect")]}, duration=100)
    assert out == [("instance", "op", "a", 25.0, 47.0, "disconnect"), ("outpost", "op", None, 25.0, 47.0, "disconnect")]


def test_outpost_is_down_only_while_no_replica_is_up() -> None:
    a, b = life("a", 0, 100), life("b", 0, 100, replica=1)
    arrivals = {"a": np.arange(1.0, 100, 10), "b": np.arange(2.0, 100, 10)}
    downs = {"a": [(25.0, "silent")], "b": [(30.0, "disconnect")]}
    # a is back at 41, b stays down until 52
    arrivals["a"] = arrivals["a"][(arrivals["a"] < 25) | (arrivals["a"] > 40)]
    arrivals["b"] = arrivals["b"][(arrivals["b"] < 30) | (arrivals["b"] > 50)]
    out = compute_outages([a, b], arrivals, downs, duration=100)
    assert ("instance", "op", "a", 25.0, 41.0, "silent") in out
    assert ("instance", "op", "b", 30.0, 52.0, "disconnect") in out
    assert ("outpost", "op", None, 30.0, 41.0, "disconnect") in out  # the last replica to go down
    assert len(out) == 3


def test_a_restart_is_an_outpost_outage_not_an_instance_outage() -> None:
    old, new = life("old", 0, 50, cause="restart"), life("new", 52, 100)
    arrivals = {"old": np.arange(1.0, 50, 10), "new": np.arange(53.0, 100, 10)}
    out = compute_outages([old, new], arrivals, {}, duration=100)
    assert out == [("outpost", "op", None, 50.0, 53.0, "restart")]


def test_outages_still_open_end_at_process_exit_or_end_of_run() -> None:
    a = life("a", 0, 60, cause="restart")
    out = compute_outages([a], {"a": np.array([1.0, 11.0])}, {"a": [(15.0, "server_restart")]}, duration=100)
    assert ("instance", "op", "a", 15.0, 60.0, "server_restart") in out
    assert ("outpost", "op", None, 15.0, 100.0, "server_restart") in out
    # a fault before the first HELLO arrived loses nothing (the exit at 60 without a successor does)
    out = compute_outages([a], {"a": np.array([5.0])}, {"a": [(2.0, "disconnect")]}, duration=100)
    assert out == [("outpost", "op", None, 60.0, 100.0, "restart")]


def _truth() -> Truth:
    a = life("a", 0, 30)
    b = TruthBuilder([a], duration=30, start=START)
    b.begin(a, 0.0)
    sent = np.arange(0.5, 30, 1.0)
    arrived = np.where((sent > 10) & (sent < 14), np.nan, sent + 0.001)
    b.hellos(a, sent, arrived)
    b.acks(a, sent[:3], sent[:3] + 0.004)
    b.down(a, 10.2, "disconnect")
    rec = b.connection(life=a, attempt=0, at=0.5, ok=True)
    rec.update(closed=10.2, close_code=1006, closed_by="peer")
    b.notice(0, 3.0, "info", "hello")
    b.end(a, 30.0)
    return b.build(clock="virtual", scenario={"seed": 1}, capture_id="cap")


def test_builder_makes_timestamped_tables() -> None:
    t = _truth()
    assert t.outages["start"].iloc[0] == START + pd.Timedelta(seconds=10.2)
    assert t.outages["end"].iloc[0] == START + pd.Timedelta(seconds=14.501)
    assert t.outages["duration_s"].iloc[0] == pytest.approx(4.301)
    assert t.hello_counts().to_dict() == {"a": 26}
    assert t.hello_counts(arrived=False).to_dict() == {"a": 30}
    assert t.acks["latency_s"].tolist() == pytest.approx([0.004] * 3)
    assert t.seconds(t.hellos["ts"]).iloc[0] == pytest.approx(0.5)
    assert t.end == START + pd.Timedelta(seconds=30)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    t = _truth()
    t.save(tmp_path / "truth")
    assert (tmp_path / "truth" / "truth.json").exists()
    back = Truth.load(tmp_path)  # a capture directory holding truth/ works too
    for name in ("outages", "instances", "hellos", "acks", "connections", "notices"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(t, name), check_dtype=False, check_categorical=False)
    assert back.start == t.start and back.clock == "virtual" and back.capture_id == "cap"
    with pytest.raises(CaptureNotFoundError, match=r"no truth\.json"):
        Truth.load(tmp_path / "nothing")
