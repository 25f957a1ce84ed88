"""Scenario: validation, the random generator, (de)serialisation."""

from __future__ import annotations

import itertools

import pytest

from wsreplay.exceptions import ConfigurationError
from wsreplay.sim import Fault, OutpostSpec, Scenario
from wsreplay.sim.scenario import FAULT_KINDS, SERVER_FAULTS
from wsreplay.sim.scenario_gen import next_version

PK = "11111111-1111-4111-8111-111111111111"


def test_generate_is_deterministic_per_seed() -> None:
    a = Scenario.generate(outposts=20, duration=600, interval=0.5, seed=7, browsers=2)
    b = Scenario.generate(outposts=20, duration=600, interval=0.5, seed=7, browsers=2)
    c = Scenario.generate(outposts=20, duration=600, interval=0.5, seed=8, browsers=2)
    assert a == b
    assert [o.pk for o in a.outposts] != [o.pk for o in c.outposts]
    assert a.notices and a.browsers == 2


def test_generate_scripts_every_kind_without_overlap_per_replica() -> None:
    sc = Scenario.generate(outposts=200, duration=3000, interval=1.0, seed=1)
    kinds = {f.kind for f in sc.faults}
    assert kinds == set(FAULT_KINDS) - {"clock_step"}  # a clock step is only ever scripted
    assert {o.replicas for o in sc.outposts} == {1, 2}
    by_replica: dict[tuple[str | None, int], list[Fault]] = {}
    for f in sc.faults:
        if f.kind not in SERVER_FAULTS:
            by_replica.setdefault((f.outpost, f.replica), []).append(f)
    for faults in by_replica.values():
        for prev, nxt in itertools.pairwise(faults):
            assert prev.at + prev.duration < nxt.at
    upgrades = [f for f in sc.faults if f.kind == "upgrade"]
    assert all(f.version for f in upgrades)


def test_fault_every_sets_how_often_a_replica_fails() -> None:
    # issue #12: fault_every was documented but ignored
    def per_replica(every: float) -> float:
        sc = Scenario.generate(outposts=100, duration=2000, interval=1.0, seed=4, fault_every=every)
        replicas = sum(o.replicas for o in sc.outposts)
        return len([f for f in sc.faults if f.kind not in SERVER_FAULTS]) / replicas

    often, rarely = per_replica(50), per_replica(1000)
    assert often > 8 * rarely
    assert 2000 / (50 + 20) < often < 2000 / 50  # about one per fault_every intervals (plus each fault's length)
    with pytest.raises(ConfigurationError):
        Scenario.generate(outposts=2, duration=100, interval=1, fault_every=0)


def test_disconnects_end_early_enough_to_reconnect_before_the_run_ends() -> None:
    sc = Scenario.generate(outposts=300, duration=500, interval=1.0, seed=2, fault_every=30)
    drops = [f for f in sc.faults if f.kind == "disconnect"]
    assert drops and all(f.at + 2 * f.duration + 5 <= sc.duration + 1e-5 for f in drops)


def test_short_runs_get_no_server_faults_and_no_faults_when_asked() -> None:
    sc = Scenario.generate(outposts=3, duration=10, interval=1.0, seed=1)
    assert not [f for f in sc.faults if f.kind in SERVER_FAULTS]
    assert Scenario.generate(outposts=30, duration=3000, interval=1, seed=1, faults=False).faults == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": 0}, "interval must be a positive"),
        ({"duration": -1}, "duration must be a positive"),
        ({"jitter": 0.7}, "jitter"),
        ({"faults": [Fault("explode", PK, 1.0)]}, "unknown fault kind 'explode'"),
        ({"faults": [Fault("disconnect", "nope", 1.0)]}, "unknown outpost 'nope'"),
        ({"faults": [Fault("silent", PK, 1.0, replica=3)]}, "has no replica 3"),
        ({"faults": [Fault("silent", PK, -1.0)]}, "must be >= 0"),
    ],
)
def test_bad_scenarios_are_one_clear_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Scenario(outposts=[OutpostSpec(PK, "t")], **kwargs)  # type: ignore[arg-type]


def test_duplicate_outposts_and_missing_replicas_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="listed twice"):
        Scenario(outposts=[OutpostSpec(PK, "a"), OutpostSpec(PK, "b")])
    with pytest.raises(ConfigurationError, match="at least one replica"):
        Scenario(outposts=[OutpostSpec(PK, "a", replicas=0)])


def test_server_faults_need_no_outpost_and_faults_are_sorted() -> None:
    sc = Scenario(
        outposts=[OutpostSpec(PK, "t")],
        faults=[Fault("disconnect", PK, 5.0, 1.0), Fault("server_restart", None, 2.0, 1.0)],
    )
    assert [f.at for f in sc.faults] == [2.0, 5.0]
    assert sc.scale == pytest.approx(1.0)
    assert sc.fault_delay(Fault("slow_network", PK, 1.0)) == pytest.approx(2.0)


def test_to_dict_leaves_tokens_out_and_round_trips() -> None:
    sc = Scenario.generate(outposts=4, duration=300, interval=0.5, seed=3, browsers=1, start="2026-02-01T00:00:00Z")
    d = sc.to_dict()
    assert "token" not in str(d)
    assert all(o.token not in str(d) for o in sc.outposts)
    back = Scenario.from_dict(d)
    assert back == sc  # generated tokens are derived from seed and pk, so they come back too
    with pytest.raises(ConfigurationError, match="malformed"):
        Scenario.from_dict({"duration": 1})


def test_next_version() -> None:
    assert next_version("2023.10.0") == "2023.10.4"
    assert next_version("2024.4.2") == "2024.4.3"
    assert next_version("weird") == "weird.1"
