"""Accuracy against the simulator's ground truth (the tolerances of the analysis issue).

Simulated fleets with every fault kind, across several seeds, in virtual time,
with 20 % HELLO jitter: every true outage longer than 2 intervals is found,
starts within ``factor x interval`` (silent) or 50 ms (connections that ended),
ends within 50 ms, no outage is invented, uptime per instance is within 0.5
percentage points and the median ACK latency within 10 % of the injected one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import wsreplay
from wsreplay.sim import Scenario, simulate_virtual
from wsreplay.sim.scenario import FAULT_KINDS

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
    sc, _truth, _frames = run
    assert {f.kind for f in sc.faults} == set(FAULT_KINDS)


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
    _sc, truth, frames = run
    inst = truth.instances.copy()
    down = truth.outages[truth.outages["level"] == "instance"].groupby("instance_uuid")["duration_s"].sum()
    observed = (inst["end"] - inst["start"]).dt.total_seconds()
    inst["true_uptime"] = 1 - inst["instance_uuid"].map(down).fillna(0.0) / observed
    both = inst.merge(wsreplay.uptime(frames, factor=FACTOR), on="instance_uuid", validate="one_to_one")
    assert len(both) == len(inst)
    assert ((both["true_uptime"] - both["uptime"]).abs() * 100).max() <= 0.5


def test_median_ack_latency_is_within_ten_percent(run):
    sc, truth, frames = run
    lat = wsreplay.ack_latency(frames)
    assert lat["latency_s"].median() == pytest.approx(sc.ack_latency, rel=0.10)
    assert lat["latency_s"].notna().sum() == pytest.approx(len(truth.acks), rel=0.01)
