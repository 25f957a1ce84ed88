"""The plan of a run: processes with their instance uuids and versions, HELLO frames from the protocol module."""

from __future__ import annotations

from wsreplay.protocol import decode, encode_hello, hello_args
from wsreplay.sim import Fault, OutpostSpec, Scenario
from wsreplay.sim.plan import make_plan

PK = "11111111-1111-4111-8111-111111111111"


def test_plan_splits_restarts_into_processes_with_new_instance_uuids() -> None:
    sc = Scenario(
        outposts=[OutpostSpec(PK, "t", version="2023.10.0")],
        duration=100,
        interval=1,
        faults=[Fault("restart", PK, 30, 2), Fault("upgrade", PK, 60, 1)],
        seed=5,
    )
    plan = make_plan(sc)
    lives = plan.lives
    assert [(lf.start, lf.end, lf.end_cause) for lf in lives][1:] == [(32, 60, "upgrade"), (61, 100, "end")]
    assert lives[0].end == 30 and lives[0].end_cause == "restart" and 0 <= lives[0].start < 1
    assert len({lf.instance_uuid for lf in lives}) == 3
    assert [lf.version for lf in lives] == ["2023.10.0", "2023.10.0", "2023.10.4"]
    assert make_plan(sc) == plan  # deterministic


def test_hello_frame_and_handshake_come_from_the_protocol_module() -> None:
    life = make_plan(Scenario(outposts=[OutpostSpec(PK, "t", version="2024.2.1")], seed=2)).lives[0]
    expected = encode_hello(
        hello_args(uuid=life.instance_uuid, version="2024.2.1", build_hash=life.build_hash, hostname=life.hostname)
    )
    assert life.hello == expected
    assert "," in life.hello and ", " not in life.hello  # Go's compact JSON
    decoded = decode(life.hello, endpoint="outpost")
    assert decoded["instance_uuid"] == life.instance_uuid and decoded["parse_error"] is None
    assert life.user_agent == "goauthentik.io/outpost/2024.2.1"
    assert life.query(3) == f"instance_uuid={life.instance_uuid}&attempt=3"
