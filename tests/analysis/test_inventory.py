"""Fleet inventory, restarts and upgrades."""

from __future__ import annotations

import pandas as pd
from analysis_support import Capture, at

from wsreplay.analysis import fleet, restarts, upgrades


def _fleet(cap: Capture) -> pd.DataFrame:
    a = cap.outpost("pk", "A").open(0).hellos(0, 30, version="2024.2.1")
    a.error(31)
    cap.outpost("pk", "A").open(35).hellos(35, 60, version="2024.2.1").close(61, code=1000)
    cap.outpost("pk", "B").open(70).hellos(70, 100, version="2024.4.2").close(101, code=1000)
    cap.outpost("pk", "C").open(110).hellos(110, 150, version="2024.4.2")
    cap.outpost("pk2", "D").open(5).hellos(5, 150, version="2023.10.0")
    return cap.frames()


def test_fleet_per_instance(cap: Capture):
    f = fleet(_fleet(cap)).set_index("instance_uuid")
    assert list(f.index) == ["A", "B", "C", "D"]
    a = f.loc["A"]
    assert (a["outpost_uuid"], a["version"], a["hostname"]) == ("pk", "2024.2.1", "host-1")
    assert (a["first_seen"], a["last_seen"]) == (at(0), at(61))
    assert a["hellos"] == 6 and a["connections"] == 2
    assert f.loc["D", "hellos"] == 15 and f.loc["D", "connections"] == 1


def test_restarts_and_upgrades(cap: Capture):
    frames = _fleet(cap)
    r = restarts(frames)
    assert r["instance_uuid"].tolist() == ["B", "C"]
    assert r["previous_instance_uuid"].tolist() == ["A", "B"]
    assert r["upgrade"].tolist() == [True, False]
    assert r["gap_s"].tolist() == [9.0, 9.0] and r.iloc[0]["ts"] == at(70)
    u = upgrades(frames)
    assert len(u) == 1 and (u.iloc[0]["previous_version"], u.iloc[0]["version"]) == ("2024.2.1", "2024.4.2")


def test_fleet_per_outpost(cap: Capture):
    f = fleet(_fleet(cap), level="outpost").set_index("outpost_uuid")
    pk = f.loc["pk"]
    assert pk["instances"] == 3 and pk["restarts"] == 2 and pk["upgrades"] == 1
    assert pk["versions"] == "2024.2.1,2024.4.2" and pk["version"] == "2024.4.2"
    assert pk["connections"] == 4 and pk["hellos"] == 6 + 3 + 4
    assert f.loc["pk2", "restarts"] == 0 and f.loc["pk2", "instances"] == 1


def test_replicas_are_not_restarts(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 60)
    cap.outpost("pk", "B").open(1).hellos(1, 60)
    assert restarts(cap.frames()).empty
