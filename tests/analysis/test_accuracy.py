"""Accuracy against the simulator's ground truth (the tolerances of the analysis issue).

Simulated fleets with every fault kind (crashes, dropped and doubled ACKs and
interval changes included), across several seeds, in virtual time, with 20 %
HELLO jitter: every true outage longer than 2 intervals is found, starts
within ``factor x interval`` (silent) or 50 ms (connections that ended, crashes
included), ends within 50 ms, no outage is invented, uptime per instance is
within 0.5 percentage points and the median ACK latency within 10 % of the
injected one. A capture that starts in the middle of an outage and a clock step
of the recording host get their own scenarios (what the analysis does there is
documented in wsreplay.analysis.coverage).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import wsreplay
from wsreplay.sim import Fault, Scenario, simulate_virtual
from wsreplay.sim.scenario import FAULT_KINDS

pytestmark = pytest.mark.usefixtures("implementation")  # the C kernels and their numpy versions

SEEDS = (0, 1, 2, 3)
FACTOR = 1.5
#: The truth calls a server restart by its fault; the capture sees authentik close the socket.
CAUSE_NAMES = {"server_restart": "upstream_close"}


@pytest.fixture(scope="module", params=SEEDS)
def run(request, tmp_path_factory) -> tuple[Scenario, object, pd.DataFrame]:
    sc = Scenario.generate(
        outposts=12,
        duration=600.0,
        interval=0.2,
        seed=request.param,
        faults=True,
        browsers=1,
        fault_every=200.0,
        jitter=0.2,
        ack_latency=0.004,
    )
    out = Path(tmp_path_factory.mktemp(f"sim{request.param}"))
    truth = simulate_virtual(sc, out=out)
    frames = wsreplay.load(out, columns=wsreplay.analysis.columns_for("outages", "ack_latency"))
    return sc, truth, frames


def _matched(truth_out: pd.DataFrame, found: pd.DataFrame, key: str) -> pd.DataFrame:
    m = truth_out.reset_index(names="i_t").merge(found.reset_index(names="i_o"), on=key, suffixes=("_t", "_o"))
    return m[(m["start_o"] < m["end_t"]) & (m["start_t"] < m["end_o"])]


def test_every_fault_kind_is_in_the_scenario(run):
    sc, truth, _frames = run
    assert {f.kind for f in sc.faults} == set(FAULT_KINDS) - {"clock_step"}  # scripted below
    assert "crash" in set(truth.outages["cause"])


@pytest.mark.parametrize("level", ["instance", "outpost"])
def test_outages_match_the_truth(run, level):
    sc, truth, frames = run
    key = "instance_uuid" if level == "instance" else "outpost_uuid"
    true = truth.outages[truth.outages["level"] == level].copy()
    true["cause"] = true["cause"].replace(CAUSE_NAMES)
    found = wsreplay.outages(frames, level=level, factor=FACTOR)
    assert len(true) > 20
    m = _matched(true, found, key)

    long_ones = true.index[true["duration_s"] > 2 * sc.interval]
    assert set(long_ones) <= set(m["i_t"]), "a true outage longer than 2 intervals was missed"
    assert set(found.index) <= set(m["i_o"]), "an outage was reported that did not happen"
    assert m["i_o"].is_unique and m["i_t"].is_unique

    late = (m["start_o"] - m["start_t"]).dt.total_seconds()
    silent = m["cause_t"] == "silent"
    assert late[silent].between(-0.05, FACTOR * sc.interval).all()
    assert late[~silent].abs().max() <= 0.05
    assert (m["end_o"] - m["end_t"]).dt.total_seconds().abs().max() <= 0.05
    assert (m["cause_t"].astype(str) == m["cause_o"].astype(str)).all()


def test_uptime_per_instance_is_within_half_a_point(run):
    sc, truth, frames = run
    inst = truth.instances.copy()
    true = truth.outages[truth.outages["level"] == "instance"]
    down = true.groupby("instance_uuid")["duration_s"].sum()
    silent = true[true["cause"] == "silent"].groupby("instance_uuid").size()
    observed = (inst["end"] - inst["start"]).dt.total_seconds()
    inst["true_uptime"] = 1 - inst["instance_uuid"].map(down).fillna(0.0) / observed
    # a silent outage's start is only known within factor x interval: over a short life that
    # alone can be more than half a point, so the bound is the larger of the two
    lag = inst["instance_uuid"].map(silent).fillna(0) * FACTOR * sc.interval
    inst["bound_pp"] = np.maximum(0.5, lag / observed * 100)
    both = inst.merge(wsreplay.uptime(frames, factor=FACTOR), on="instance_uuid", validate="one_to_one")
    assert len(both) == len(inst)
    off = (both["true_uptime"] - both["uptime"]).abs() * 100
    assert (off <= both["bound_pp"]).all()


def test_median_ack_latency_is_within_ten_percent(run):
    sc, truth, frames = run
    lat = wsreplay.ack_latency(frames)
    assert lat["latency_s"].median() == pytest.approx(sc.ack_latency, rel=0.10)
    assert lat["latency_s"].notna().sum() == pytest.approx(len(truth.acks), rel=0.01)
    # dropped and doubled ACKs shift nothing: every answered frame's latency is a true one
    true = truth.acks.set_index("sent_ts")["latency_s"].sort_index()
    found = lat.dropna(subset=["latency_s"]).set_index("sent_ts")["latency_s"].sort_index()
    assert found.min() >= 0 and found.max() <= true.max() + 1e-6  # a shifted pair would be an interval long
    assert lat.attrs["unmatched_acks"] > 0 and lat.attrs["unanswered"] > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_capture_that_starts_in_the_middle_of_an_outage(tmp_path, seed):
    # the capture starts 2 s into a 6 s disconnect of one outpost
    base = Scenario.generate(outposts=4, duration=120.0, interval=0.2, seed=seed, faults=False, jitter=0.2)
    victim = base.outposts[0].pk
    sc = replace(base, faults=[Fault("disconnect", victim, 20.0, 6.0)], capture_start=22.0)
    truth = simulate_virtual(sc, out=tmp_path / "c")
    frames = wsreplay.load(tmp_path / "c")
    true = truth.outages[truth.outages["level"] == "outpost"]
    assert len(true) == 1 and true["start"].iloc[0] == truth.start + pd.Timedelta(seconds=22)
    # the capture holds nothing of the victim before it comes back: unobserved, not down
    assert wsreplay.outages(frames, level="outpost").empty
    up = wsreplay.uptime(frames, level="outpost").set_index("outpost_uuid")
    back = true["end"].iloc[0]
    window = (frames["ts"].max() - frames["ts"].min()).total_seconds()
    assert up.loc[victim, "uptime"] == 1.0
    assert up.loc[victim, "observed_share"] == pytest.approx(
        (frames["ts"].max() - back).total_seconds() / window, abs=0.005
    )
    assert (up.drop(index=victim)["observed_share"] > 0.99).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_a_clock_step_on_the_recording_host_shifts_but_never_breaks(tmp_path, seed):
    step, at = 2.0, 300.0
    sc = Scenario.generate(
        outposts=8, duration=600.0, interval=0.2, seed=seed, faults=True, fault_every=200.0, jitter=0.2
    )
    sc = replace(sc, faults=[*sc.faults, Fault("clock_step", None, at, 0.0, delay=step)])
    truth = simulate_virtual(sc, out=tmp_path / "c")
    frames = wsreplay.load(tmp_path / "c")
    t_step = truth.start + pd.Timedelta(seconds=at)

    def on_capture_clock(ts: pd.Series) -> pd.Series:
        return ts.where(ts < t_step, ts - pd.Timedelta(seconds=step))

    for level in ("instance", "outpost"):
        true = truth.outages[truth.outages["level"] == level].copy()
        true["cause"] = true["cause"].replace(CAUSE_NAMES)
        true["start"], true["end"] = on_capture_clock(true["start"]), on_capture_clock(true["end"])
        # outages within a step of it may be merged or cut by the interleaving: judged apart
        near = (true["start"] - t_step).abs().dt.total_seconds() < 2 * step
        near |= (true["end"] - t_step).abs().dt.total_seconds() < 2 * step
        key = "instance_uuid" if level == "instance" else "outpost_uuid"
        found = wsreplay.outages(frames, level=level, factor=FACTOR)
        assert (found["duration_s"] > 0).all() and (found["end"] >= found["start"]).all()
        m = _matched(true[~near], found, key)
        long_ones = true.index[~near & (true["duration_s"] > 2 * sc.interval)]
        assert set(long_ones) <= set(m["i_t"])
        assert (m["end_o"] - m["end_t"]).dt.total_seconds().abs().max() <= 0.05
        assert len(found) <= len(true) + 2  # the step invents at most what it cuts in two
    lat = wsreplay.ack_latency(frames)
    assert (lat["latency_s"].dropna() >= 0).all()
    assert lat["latency_s"].median() == pytest.approx(sc.ack_latency, rel=0.10)
    up = wsreplay.uptime(frames)
    assert up["uptime"].between(0, 1).all()
