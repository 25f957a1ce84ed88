"""Real time: the fleet against the mock authentik (and through the real recorder).

One scripted run (5 s at a 0.2 s interval, every fault kind) is shared by the
first tests: its truth must match what the mock saw, and its capture must
agree with the virtual-time capture of the same scenario.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from wsreplay import load
from wsreplay.exceptions import ConfigurationError
from wsreplay.record import Recorder
from wsreplay.schema import table_to_frames
from wsreplay.sim import (
    Fault,
    MockAuthentik,
    Notice,
    OutpostSpec,
    Scenario,
    Truth,
    run_fleet,
    run_fleet_async,
    virtual_table,
)
from wsreplay.sim.fleet import ws_base_url
from wsreplay.store import CaptureWriter

A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"
INTERVAL = 0.2

SCENARIO = Scenario(
    outposts=[OutpostSpec(A, "token-a", replicas=2), OutpostSpec(B, "token-b", version="2024.2.1")],
    duration=5.0,
    interval=INTERVAL,
    ack_latency=0.002,
    seed=3,
    browsers=1,
    notices=[Notice(1.5, "simulated warning", "warning")],
    faults=[
        Fault("disconnect", A, at=0.8, duration=0.3),
        Fault("silent", B, at=1.0, duration=0.5),
        Fault("restart", A, at=1.6, duration=0.1, replica=1),
        Fault("upgrade", B, at=2.2, duration=0.1),
        Fault("slow_network", A, at=2.5, duration=0.6, delay=0.05),
        Fault("server_restart", None, at=3.3, duration=0.2),
        Fault("latency_spike", None, at=4.0, duration=0.4, delay=0.03),
    ],
)


@dataclass
class Run:
    truth: Truth
    log: list[dict[str, Any]]
    frames: pd.DataFrame


async def _scripted_run(out: Path) -> Run:
    async with MockAuthentik(outposts=SCENARIO.tokens, ack_latency=SCENARIO.ack_latency) as ak:
        async with Recorder(upstream=ak.url, out=out) as rec:
            truth = await run_fleet_async(SCENARIO, rec.url, mock=ak)
        log = list(ak.log)
    return Run(truth, log, load(out))


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return asyncio.run(_scripted_run(tmp_path_factory.mktemp("fleet") / "cap"))


def _seconds(truth: Truth, ns: int) -> float:
    return (ns - truth.start.value) / 1e9


def test_truth_matches_what_the_mock_saw(scripted: Run) -> None:
    truth, log = scripted.truth, scripted.log
    outpost_log = [e for e in log if e["endpoint"] == "outpost"]
    hellos = [e for e in outpost_log if e["event"] == "recv" and e["instruction"] == 1]
    # every HELLO that reached the server, per instance
    seen = collections.Counter(e["instance_uuid"] for e in hellos)
    assert dict(seen) == {str(k): v for k, v in truth.hello_counts().items()}
    assert len(seen) == len(truth.instances) == 5
    # every ACK the fleet counted was sent by the mock (one sent just before a drop may be lost)
    acks_sent = collections.Counter(e["instance_uuid"] for e in outpost_log if e["event"] == "send")
    acks_got = {str(k): v for k, v in truth.acks.groupby("instance_uuid", observed=True).size().items()}
    for iid, n in acks_got.items():
        assert acks_sent[iid] - 1 <= n <= acks_sent[iid]
    # connections: the same opens (instance uuid from the query string) and the same closes
    opens = collections.Counter(e["instance_uuid"] for e in outpost_log if e["event"] == "open")
    ok = truth.connections[truth.connections["ok"] & (truth.connections["endpoint"] == "outpost")]
    assert dict(opens) == dict(collections.Counter(ok["instance_uuid"]))
    closes = collections.Counter(e["code"] for e in outpost_log if e["event"] == "close")
    assert closes == collections.Counter(int(c) for c in ok["close_code"])
    assert closes[1012] == 3 and closes[1006] == 1
    # an outage is a stretch with no HELLO from that instance, ended by the first HELLO after it
    inst = truth.outages[truth.outages.level == "instance"]
    assert sorted(inst["cause"]) == ["disconnect", "server_restart", "server_restart", "server_restart", "silent"]
    for o in inst.itertuples():
        times = np.array([_seconds(truth, e["ts"]) for e in hellos if e["instance_uuid"] == o.instance_uuid])
        start, end = truth.seconds(o.start), truth.seconds(o.end)
        assert not ((times > start + 0.005) & (times < end - 0.005)).any()
        assert np.abs(times - end).min() < INTERVAL / 2  # both clocks saw the same HELLO
    # the restart of authentik is in its log when the truth says it happened
    restart = next(e for e in log if e["event"] == "restart")
    assert _seconds(truth, restart["ts"]) == pytest.approx(3.3, abs=INTERVAL / 2)
    # the browser got the notice; no token ever reached the log
    assert truth.notices["level"].tolist() == ["warning"]
    assert "token-a" not in str(log) and "token-b" not in str(log)


def _kinds(frames: pd.DataFrame) -> collections.Counter[tuple[Any, ...]]:
    reason = frames["close_reason"].astype(object).where(frames["status"].isna(), "refused")
    cols = [frames[c].astype(object).where(frames[c].notna(), None) for c in ("event", "direction", "close_code")]
    return collections.Counter(zip(*cols, reason.where(reason.notna(), None)))


def test_virtual_and_real_time_captures_agree(scripted: Run) -> None:
    table, vtruth = virtual_table(SCENARIO)
    virtual = table_to_frames(table)
    real, rtruth = scripted.frames, scripted.truth
    # the same processes (instance uuids come from the seed), about the same HELLOs each
    rh = real[real.instruction_name == "HELLO"].groupby("instance_uuid", observed=True).size()
    vh = virtual[virtual.instruction_name == "HELLO"].groupby("instance_uuid", observed=True).size()
    assert set(rh.index.astype(str)) == set(vh.index.astype(str))
    for iid, n in vh.items():
        # a reconnect a few ms late (a busy machine) can cost the real run a HELLO per reconnect
        assert abs(int(rh[iid]) - int(n)) <= 2, iid
    # the same kinds of rows: opens, closes by code and side, refusals while restarting, broken sockets
    # (how many retries fall into the restart's downtime depends on timing: both have some)
    rk, vk = _kinds(real), _kinds(virtual)
    assert set(rk) == set(vk)
    for key in rk:
        if key[3] == "refused":
            assert rk[key] > 0 and vk[key] > 0
        elif key[0] == "message":
            assert abs(rk[key] - vk[key]) <= 2 * len(vh), key
        else:
            assert rk[key] == vk[key], key
    # the same outages: starts (scripted) within half an interval; ends (the first HELLO
    # after a reconnect, whose backoff steps may straddle the end of a fault) within one
    ro, vo = rtruth.outages, vtruth.outages
    assert ro[["level", "cause"]].values.tolist() == vo[["level", "cause"]].values.tolist()
    for col, tolerance in (("start", INTERVAL / 2), ("end", INTERVAL)):
        diff = np.abs(rtruth.seconds(ro[col]).to_numpy() - vtruth.seconds(vo[col]).to_numpy())
        assert diff.max() < tolerance, col


def test_refused_tokens_are_counted_and_never_connect() -> None:
    sc = Scenario(outposts=[OutpostSpec(A, "wrong-token")], duration=0.6, interval=INTERVAL, seed=1)

    async def main() -> tuple[Truth, list[dict[str, Any]]]:
        async with MockAuthentik(outposts={A: "right-token"}) as ak:
            return await run_fleet_async(sc, ak.ws_url), list(ak.log)

    truth, log = asyncio.run(main())
    assert len(truth.hellos) == 0
    assert len(truth.connections) >= 3  # retried with backoff
    assert truth.connections["status"].eq(403).all() and not truth.connections["ok"].any()
    assert truth.connections["attempt"].tolist() == list(range(len(truth.connections)))
    assert [e["status"] for e in log if e["event"] == "reject"] == [403] * len(truth.connections)


def test_blocking_twin_with_a_mock_in_a_thread_and_the_fleet_side_capture(tmp_path: Path) -> None:
    sc = replace(
        Scenario.generate(outposts=2, duration=1.5, interval=INTERVAL, seed=5, faults=False),
        faults=[Fault("server_restart", None, at=0.7, duration=0.1)],
    )
    handle = MockAuthentik(outposts=sc.tokens).start_in_thread()
    try:
        writer = CaptureWriter(tmp_path / "cap")
        truth = run_fleet(sc, handle.url, mock=handle, capture=writer)
        writer.close()
    finally:
        handle.stop()
    frames = load(tmp_path / "cap")
    hellos = frames[frames.instruction_name == "HELLO"]
    assert len(hellos) == int(truth.hello_counts().sum()) > 10
    assert set(frames[frames.event == "close"]["close_code"].dropna().astype(int)) == {1000, 1012}
    opens = frames[frames.event == "open"]
    assert opens["user_agent"].str.startswith("goauthentik.io/outpost/").all()
    assert opens["query"].str.contains("instance_uuid=").all()
    assert (truth.outages["cause"] == "server_restart").sum() == 4  # two instances, two outposts


def test_bad_urls_and_server_faults_without_a_mock_are_clear_errors() -> None:
    assert ws_base_url("https://ak.example/base/") == "wss://ak.example/base"
    with pytest.raises(ConfigurationError, match="not an http"):
        ws_base_url("ftp://x")
    sc = Scenario(outposts=[OutpostSpec(A, "t")], duration=1, faults=[Fault("server_restart", None, 0.5, 0.1)])
    with pytest.raises(ConfigurationError, match="pass the MockAuthentik"):
        asyncio.run(run_fleet_async(sc, "http://127.0.0.1:1"))


NEW_FAULTS = Scenario(
    outposts=[OutpostSpec(A, "token-a"), OutpostSpec(B, "token-b", version="2024.2.1")],
    duration=6.0,
    interval=INTERVAL,
    ack_latency=0.002,
    seed=5,
    faults=[
        Fault("crash", A, at=1.5, duration=0.3),
        Fault("interval_change", B, at=1.0, duration=3.2, delay=2 * INTERVAL),  # 8 gaps: > LOCAL_GAPS
        Fault("ack_drop", None, at=3.5, duration=1.0),
        Fault("ack_dup", None, at=4.6, duration=1.0),
    ],
)


async def _new_faults_run(out: Path) -> tuple[Truth, pd.DataFrame]:
    async with MockAuthentik(outposts=NEW_FAULTS.tokens, ack_latency=NEW_FAULTS.ack_latency) as ak:
        async with Recorder(upstream=ak.url, out=out) as rec:
            truth = await run_fleet_async(NEW_FAULTS, rec.url, mock=ak)
    return truth, load(out)


def test_crashes_interval_changes_and_a_misbehaving_server_in_real_time(tmp_path: Path) -> None:
    # issue #12: the real-time fleet plays the new faults, and the analysis finds them in its capture
    import wsreplay

    truth, frames = asyncio.run(_new_faults_run(tmp_path / "cap"))
    # the crash: a new instance of A, an outpost outage with cause crash, no instance outage
    assert truth.instances.groupby("outpost_uuid").size()[A] == 2
    out = wsreplay.outages(frames, level="outpost", factor=1.5)
    out = out[out["start"] < frames["ts"].max() - pd.Timedelta(seconds=0.1)]  # not the run's end
    crash = out[out["outpost_uuid"] == A]
    assert crash["cause"].tolist() == ["crash"]
    true = truth.outages[(truth.outages["level"] == "outpost") & (truth.outages["outpost_uuid"] == A)]
    assert true["cause"].tolist() == ["crash"]
    assert abs((crash["start"].iloc[0] - true["start"].iloc[0]).total_seconds()) < 0.05
    # the interval change of B is no outage; ACKs dropped and doubled shift no latency
    inst = wsreplay.outages(frames, factor=1.5)
    assert inst[inst["start"] < frames["ts"].max() - pd.Timedelta(seconds=0.1)].empty
    lat = wsreplay.ack_latency(frames)
    assert lat.attrs["unanswered"] >= 3 and lat.attrs["unmatched_acks"] >= 3
    assert lat["latency_s"].max() < 0.1
    answered = lat["latency_s"].notna().sum()
    assert abs(answered - len(truth.acks)) <= 2
