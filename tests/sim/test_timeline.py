"""What each process does, shared by both clocks: backoff, HELLO schedule, the replica program."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from wsreplay.sim import Fault, OutpostSpec, Scenario
from wsreplay.sim.plan import Window, make_plan
from wsreplay.sim.timeline import (
    Begin,
    Connect,
    Connected,
    End,
    Held,
    Hold,
    Sleep,
    backoff_delay,
    browser_backoff,
    hello_schedule,
    replica_program,
)

PK = "11111111-1111-4111-8111-111111111111"


def test_backoff_doubles_from_one_second_and_caps_at_five_minutes() -> None:
    assert [backoff_delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert backoff_delay(20) == 300.0
    assert backoff_delay(3, scale=0.02) == pytest.approx(0.08)
    assert [browser_backoff(n) for n in (1, 2, 3)] == pytest.approx([0.2, 0.4, 0.8])


def test_hello_schedule_skips_a_hang_and_resumes_when_it_ends() -> None:
    gaps = np.ones(20)
    plain = hello_schedule(0.0, 5.0, gaps)
    assert plain.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    hung = hello_schedule(0.0, 8.0, gaps, [Window(1.5, 4.2, "silent")])
    assert hung.tolist() == pytest.approx([0.0, 1.0, 4.2, 5.2, 6.2, 7.2])
    assert hello_schedule(0.0, 3.0, gaps, [Window(0.0, 10.0, "silent")]).size == 0


def test_hello_schedule_follows_an_interval_change_also_across_a_hang() -> None:
    gaps = np.ones(20)
    slow = [Window(2.0, 8.0, "interval_change", 3.0)]  # every 3 s from 2 s to 8 s
    assert hello_schedule(0.0, 13.0, gaps, cadence=slow).tolist() == [0.0, 1.0, 2.0, 5.0, 8.0, 9.0, 10.0, 11.0, 12.0]
    hung = hello_schedule(0.0, 13.0, gaps, [Window(2.5, 4.0, "silent")], slow)
    assert hung.tolist() == [0.0, 1.0, 2.0, 4.0, 7.0, 10.0, 11.0, 12.0]


def test_a_crash_aborts_the_connection_and_starts_a_new_process() -> None:
    sc = Scenario(outposts=[OutpostSpec("pk", "t")], duration=10, interval=1.0, faults=[Fault("crash", "pk", 4.0, 1.0)])
    plan = make_plan(sc)
    first, second = plan.replicas[0].lives
    assert (first.end, first.end_cause, second.start) == (4.0, "crash", 5.0)
    assert first.instance_uuid != second.instance_uuid
    program = replica_program(plan, plan.replicas[0])
    holds = []
    cmd = next(program)
    while True:
        if isinstance(cmd, Hold):
            holds.append(cmd)
            reply: object = Held(cmd.until, False)
        elif isinstance(cmd, Connect):
            reply = Connected(True, cmd.at)
        else:
            reply = getattr(cmd, "until", 0.0)
        try:
            cmd = program.send(reply)
        except StopIteration:
            break
    assert [(h.abort, h.crash, h.until) for h in holds] == [(True, True, 4.0), (False, False, 10.0)]


def _play(program: Any, server_down: tuple[float, float] | None = None) -> list[Any]:
    """Drive a program with a trivial predicted server; return the commands seen."""
    seen: list[Any] = []
    value: Any = None
    now = 0.0
    while True:
        try:
            cmd = program.send(value)
        except StopIteration:
            return seen
        seen.append(cmd)
        if isinstance(cmd, Sleep):
            now = max(now, cmd.until)
            value = now
        elif isinstance(cmd, (Begin, End)):
            value = now
        elif isinstance(cmd, Connect):
            down = server_down is not None and server_down[0] <= cmd.at < server_down[1]
            value = Connected(not (cmd.blocked or down), cmd.at)
        elif isinstance(cmd, Hold):
            now = cmd.until
            value = Held(cmd.until, False)


def test_replica_reconnects_with_backoff_while_its_network_is_down() -> None:
    sc = Scenario(
        outposts=[OutpostSpec(PK, "t")], duration=60, interval=10, faults=[Fault("disconnect", PK, 10, 6)], seed=1
    )
    plan = make_plan(sc)
    cmds = _play(replica_program(plan, plan.replicas[0]))
    connects = [c for c in cmds if isinstance(c, Connect)]
    holds = [c for c in cmds if isinstance(c, Hold)]
    assert holds[0].abort and holds[0].until == 10
    # retries 1 s, then 2 s, 4 s later: 11 and 13 fail (network down until 16), 17 succeeds
    assert [(c.at, c.attempt, c.blocked) for c in connects[1:]] == [(11, 1, True), (13, 2, True), (17, 3, False)]
    assert holds[1].opened == 17 and holds[1].until == 60 and not holds[1].abort
    assert isinstance(cmds[-1], End)


def test_a_hung_process_waits_before_reconnecting() -> None:
    sc = Scenario(
        outposts=[OutpostSpec(PK, "t")],
        duration=60,
        interval=10,
        faults=[Fault("disconnect", PK, 10, 0.5), Fault("silent", PK, 10.5, 20)],
        seed=1,
    )
    plan = make_plan(sc)
    connects = [c for c in _play(replica_program(plan, plan.replicas[0])) if isinstance(c, Connect)]
    assert connects[1].at == 30.5 and connects[1].attempt == 1


def test_the_shared_model_does_no_io_and_writes_no_protocol_json() -> None:
    import ast
    from pathlib import Path

    import wsreplay.sim

    root = Path(wsreplay.sim.__file__).parent
    for name in ("scenario.py", "scenario_gen.py", "plan.py", "timeline.py", "truth.py", "truth_data.py", "virtual.py"):
        tree = ast.parse((root / name).read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & {"asyncio", "websockets", "socket", "time"}, name
    for name in ("scenario.py", "scenario_gen.py", "plan.py", "timeline.py", "fleet.py", "virtual.py"):
        assert '{"instruction' not in (root / name).read_text(), name  # frames come from wsreplay.protocol
