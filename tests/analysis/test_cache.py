"""What analysis calls on the same frames share (wsreplay/analysis/_cache.py), and that it is never stale."""

from __future__ import annotations

import gc

import pandas as pd
import pytest
from analysis_support import Capture

import wsreplay
from wsreplay.analysis import _cache, coverage


def _fleet() -> pd.DataFrame:
    cap = Capture()
    cap.outpost("pk1", "A").open(0).hellos(0, 60).close(60.5, code=1006)
    cap.outpost("pk1", "A2").open(90).hellos(90, 300)
    cap.outpost("pk2", "B").open(0).hellos(0, 120).hellos(200, 300)
    return cap.frames()


def _count_calls(monkeypatch, module, name: str) -> dict[str, int]:
    """Replace *module.name* by a wrapper that counts its calls; the count is in ``["n"]``."""
    count = {"n": 0}
    real = getattr(module, name)

    def counting(*args, **kwargs):
        count["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return count


@pytest.fixture
def calls(monkeypatch):
    """How often the outage timeline was computed."""
    count = _count_calls(monkeypatch, coverage, "_coverage")
    _cache.clear()
    yield count
    _cache.clear()


def test_uptime_after_outages_reuses_the_timeline(calls):
    frames = _fleet()
    out = wsreplay.outages(frames)
    up = wsreplay.uptime(frames)
    assert calls["n"] == 1
    wsreplay.uptime(frames, level="outpost")  # other parameters: another timeline
    wsreplay.outages(frames, factor=2.0)
    assert calls["n"] == 3
    _cache.clear()
    pd.testing.assert_frame_equal(wsreplay.outages(frames), out)
    pd.testing.assert_frame_equal(wsreplay.uptime(frames), up)
    assert calls["n"] == 4


def test_frames_sharing_their_columns_share_the_timeline(calls):
    frames = _fleet()
    wsreplay.outages(frames)
    wsreplay.uptime(frames[[c for c in frames.columns if c not in ("user_agent", "peer")]])
    assert calls["n"] == 1
    wsreplay.uptime(frames[list(wsreplay.analysis.columns_for("uptime"))])  # fewer of the columns it reads
    assert calls["n"] == 2


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.__setitem__("ts", f["ts"] + pd.Timedelta("1s")),  # a column replaced
        lambda f: f.loc.__setitem__((f.index[f["instruction_name"] == "HELLO"][3], "instruction_name"), "ACK"),
        lambda f: f.iloc.__setitem__((5, f.columns.get_loc("ts")), f["ts"].iloc[5] + pd.Timedelta("500s")),
        lambda f: f.__delitem__("close_code"),  # every close now counts as a disconnect
    ],
    ids=["replaced", "loc-in-place", "iloc-in-place", "column-deleted"],
)
def test_frames_modified_after_a_call_are_analysed_anew(calls, change):
    frames = _fleet()
    wsreplay.outages(frames)
    wsreplay.ack_latency(frames)
    change(frames)
    got_out, got_up, got_lat = wsreplay.outages(frames), wsreplay.uptime(frames), wsreplay.ack_latency(frames)
    fresh = frames.copy(deep=True)
    _cache.clear()
    pd.testing.assert_frame_equal(got_out, wsreplay.outages(fresh))
    pd.testing.assert_frame_equal(got_up, wsreplay.uptime(fresh))
    pd.testing.assert_frame_equal(got_lat, wsreplay.ack_latency(fresh))


def test_the_cache_lets_the_frames_go():
    _cache.clear()
    frames = _fleet()
    wsreplay.outages(frames)
    assert _cache._entry is not None
    del frames
    gc.collect()
    assert _cache._entry is None


def test_fleet_restarts_and_upgrades_share_one_instance_table(monkeypatch):
    from wsreplay.analysis import inventory

    count = _count_calls(monkeypatch, inventory, "_instance_table")
    _cache.clear()
    frames = _fleet()
    inv = wsreplay.fleet(frames)
    wsreplay.fleet(frames, level="outpost")
    wsreplay.restarts(frames)
    wsreplay.upgrades(frames)
    assert count["n"] == 1
    inv.loc[0, "version"] = "edited by the caller"  # a result is the caller's: the shared table stays as it was
    assert "edited by the caller" not in set(wsreplay.fleet(frames)["version"])
    _cache.clear()


@pytest.mark.parametrize("column", ["hostname", "build_hash", "version"])
@pytest.mark.parametrize("how", ["replaced", "in-place"])
def test_the_fleet_table_follows_its_text_columns(column, how):
    _cache.clear()
    frames = _fleet()
    frames[column] = pd.Categorical(["host-a"] * len(frames), categories=["host-a", "host-b"])
    before = wsreplay.fleet(frames)
    if how == "replaced":
        frames[column] = pd.Categorical(["host-b"] * len(frames), categories=["host-a", "host-b"])
    else:
        frames.loc[:, column] = "host-b"
    after = wsreplay.fleet(frames)
    assert set(before[column]) == {"host-a"} and set(after[column]) == {"host-b"}
    _cache.clear()


@pytest.mark.parametrize("levels", [("outpost", "instance"), ("instance", "outpost")])
@pytest.mark.parametrize("policy", ["observed", "authentik"])
def test_both_levels_at_once_share_the_refreshes_and_fill_the_cache(calls, monkeypatch, levels, policy):
    phases = _count_calls(monkeypatch, coverage, "_refreshes")
    frames = _fleet()
    got = coverage.coverage_levels(frames, levels, policy=policy)
    assert phases["n"] == 1 and calls["n"] == 2 and set(got) == {"outpost", "instance"}
    at_once = [wsreplay.outages(frames, level=lv, policy=policy) for lv in ("outpost", "instance")]
    assert calls["n"] == 2  # both came from the cache
    _cache.clear()
    one_by_one = [wsreplay.outages(frames, level=lv, policy=policy) for lv in ("outpost", "instance")]
    assert phases["n"] == 3  # each level alone computes the refreshes itself
    for a, b in zip(at_once, one_by_one, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert len(at_once[1]) > 0
