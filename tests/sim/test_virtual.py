"""Virtual time: the generated capture is what ConnectionLog would write, deterministic, consistent with its truth."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from wsreplay import load
from wsreplay.events import ConnectionLog
from wsreplay.exceptions import CaptureError
from wsreplay.protocol import ACK_FRAME
from wsreplay.schema import SCHEMA, table_to_frames
from wsreplay.sim import Fault, OutpostSpec, Scenario, Truth, simulate_virtual, virtual_table

A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"


def scripted() -> Scenario:
    return Scenario(
        outposts=[OutpostSpec(A, "ta", replicas=2), OutpostSpec(B, "tb", version="2024.2.1")],
        duration=60,
        interval=1.0,
        ack_latency=0.004,
        browsers=1,
        seed=11,
        faults=[
            Fault("disconnect", A, at=10, duration=3),
            Fault("silent", B, at=12, duration=4),
            Fault("restart", A, at=20, duration=1, replica=1),
            Fault("upgrade", B, at=30, duration=0.5, version="2024.4.2"),
            Fault("slow_network", A, at=35, duration=5, delay=0.3),
            Fault("server_restart", None, at=45, duration=2),
            Fault("latency_spike", None, at=50, duration=3, delay=0.1),
        ],
        notices=[],
    )


def test_same_seed_same_capture_and_truth() -> None:
    sc = Scenario.generate(outposts=6, duration=300, interval=1.0, seed=4, browsers=1)
    t1, truth1 = virtual_table(sc)
    t2, truth2 = virtual_table(sc)
    assert t1.equals(t2)
    pd.testing.assert_frame_equal(truth1.outages, truth2.outages)
    pd.testing.assert_frame_equal(truth1.hellos, truth2.hellos)
    t3, _ = virtual_table(Scenario.generate(outposts=6, duration=300, interval=1.0, seed=5, browsers=1))
    assert not t1.equals(t3)


def test_rows_are_exactly_what_connection_log_writes() -> None:
    table, _ = virtual_table(scripted())
    assert table.schema.equals(SCHEMA)
    rows = table.to_pylist()
    by_conn: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_conn.setdefault(str(row["conn_id"]), []).append(row)
    checked = 0
    for conn_rows in by_conn.values():
        conn_rows.sort(key=lambda r: r["seq"])  # type: ignore[arg-type,return-value]
        first = conn_rows[0]
        log = ConnectionLog(first["capture_id"], first["path"], first["query"], conn_id=first["conn_id"])  # type: ignore[arg-type]
        for row in conn_rows:
            ts = int(pd.Timestamp(row["ts"]).value)  # type: ignore[arg-type]
            if row["event"] == "open":
                want = log.open(ts, status=row["status"], user_agent=row["user_agent"], peer=row["peer"])  # type: ignore[arg-type]
            elif row["event"] == "message":
                want = log.message(ts, row["direction"], row["payload"])  # type: ignore[arg-type]
            elif row["event"] == "close":
                want = log.close(ts, row["direction"], code=row["close_code"], reason=row["close_reason"])  # type: ignore[arg-type]
            else:
                want = log.error(ts, row["close_reason"], status=row["status"], direction=row["direction"])  # type: ignore[arg-type]
                if row["status"] is not None:  # a refused handshake: the recorder keeps who asked
                    want.update(user_agent=row["user_agent"], peer=row["peer"])
            expected = pa.Table.from_pylist([want], schema=SCHEMA).to_pylist()[0]
            assert row == expected
            checked += 1
    assert checked == len(rows) > 100


def test_what_the_recorder_sees_of_each_fault() -> None:
    table, truth = virtual_table(scripted())
    f = table_to_frames(table)
    opens = f[(f.event == "open") & (f.endpoint == "outpost")]
    assert opens["status"].eq(101).all()
    assert set(opens["user_agent"]) == {
        "goauthentik.io/outpost/2023.10.0",
        "goauthentik.io/outpost/2024.2.1",
        "goauthentik.io/outpost/2024.4.2",
    }
    assert opens["query"].str.fullmatch(r"instance_uuid=[0-9a-f-]{36}&attempt=\d+").all()
    closes = f[f.event == "close"]
    codes = closes.groupby(["close_code", "direction"], observed=True).size().to_dict()
    assert codes[(1006, "to_server")] == 1  # the network drop
    assert codes[(1012, "to_peer")] == 4  # server restart: three replicas and the browser
    assert codes[(1000, "to_server")] >= 5  # restart, upgrade, end of run
    errors = f[f.event == "error"]
    refused = errors[errors["status"].notna()]
    assert len(refused) > 0 and refused["status"].eq(502).all()  # refused while authentik restarts
    assert refused["direction"].eq("to_peer").all() and refused["peer"].notna().all()
    broken = errors[errors["status"].isna()]  # the drop: a close 1006 and an error row, like the recorder
    assert broken["direction"].tolist() == ["to_server"]
    assert broken["close_reason"].tolist() == closes[closes.close_code == 1006]["close_reason"].tolist()
    hellos = f[f.instruction_name == "HELLO"]
    acks = f[f.instruction_name == "ACK"]
    # every HELLO is answered, except one whose ACK would leave after its connection closed
    assert len(hellos) - len(closes) <= len(acks) <= len(hellos)
    assert set(acks["payload"]) == {ACK_FRAME}
    # the capture's HELLOs are the truth's HELLOs that reached the server
    per_instance = hellos.groupby("instance_uuid", observed=True).size()
    assert {str(k): v for k, v in per_instance.items()} == {str(k): v for k, v in truth.hello_counts().items()}
    # ACK latency: the fixed latency, plus the spike
    lat = truth.acks.set_index("sent_ts")["latency_s"]
    spike = (truth.seconds(lat.index) >= 50) & (truth.seconds(lat.index) < 53)
    a0 = truth.instances[(truth.instances.outpost_uuid == A) & (truth.instances.replica == 0)].instance_uuid
    in_a0 = truth.acks["instance_uuid"].astype(str).isin(set(a0)).to_numpy()
    sent_s = truth.seconds(truth.acks["sent_ts"]).to_numpy()
    slow = in_a0 & (sent_s >= 35) & (sent_s < 39.5)
    plain = ~spike & ~(in_a0 & (sent_s >= 35) & (sent_s < 40))
    assert np.allclose(lat[plain], 0.004)
    assert np.allclose(lat[spike & ~in_a0], 0.104)
    assert np.allclose(lat[slow], 0.604)  # 0.3 s each way


def test_truth_of_the_scripted_faults() -> None:
    _, truth = virtual_table(scripted())
    inst = truth.outages[truth.outages.level == "instance"]
    assert sorted(inst["cause"].value_counts().items()) == [("disconnect", 1), ("server_restart", 3), ("silent", 1)]
    silent = inst[inst.cause == "silent"].iloc[0]
    assert truth.seconds(silent["start"]) == pytest.approx(12)
    assert truth.seconds(silent["end"]) == pytest.approx(16)  # HELLO at wake-up
    drop = inst[inst.cause == "disconnect"].iloc[0]
    assert truth.seconds(drop["start"]) == pytest.approx(10)
    # backoff scaled by interval/10 = 0.1: retries at 10.1, 10.3, 10.7, 11.5 fail, 13.1 works
    assert truth.seconds(drop["end"]) == pytest.approx(13.1)
    outp = truth.outages[truth.outages.level == "outpost"]
    # A has two replicas: the drop and the restart of one are not outages of A
    assert set(outp[outp.outpost_uuid == A]["cause"]) == {"server_restart"}
    assert set(outp[outp.outpost_uuid == B]["cause"]) == {"silent", "upgrade", "server_restart"}
    assert len(truth.instances) == 5
    assert truth.instances.groupby("outpost_uuid").size().to_dict() == {A: 3, B: 2}


def test_simulate_virtual_writes_a_loadable_capture_and_its_truth(tmp_path: Path) -> None:
    sc = Scenario.generate(outposts=5, duration=400, interval=1.0, seed=2, browsers=2)
    truth = simulate_virtual(sc, tmp_path / "cap", segment_rows=1000)
    frames = load(tmp_path / "cap")
    table, _ = virtual_table(sc)
    assert len(frames) == table.num_rows
    assert frames["ts"].is_monotonic_increasing
    assert len(list((tmp_path / "cap").glob("*.parquet"))) > 1
    back = Truth.load(tmp_path / "cap")
    pd.testing.assert_frame_equal(back.outages, truth.outages, check_dtype=False)
    assert back.capture_id == frames["capture_id"].iloc[0]
    with pytest.raises(CaptureError, match="already holds a capture"):
        simulate_virtual(sc, tmp_path / "cap")


def test_through_the_capture_writer_gives_the_same_rows(tmp_path: Path) -> None:
    sc = Scenario.generate(outposts=3, duration=200, interval=1.0, seed=9)
    simulate_virtual(sc, tmp_path / "direct", save_truth=False)
    simulate_virtual(sc, tmp_path / "writer", via_writer=True, save_truth=False)
    a, b = load(tmp_path / "direct"), load(tmp_path / "writer")
    pd.testing.assert_frame_equal(a, b)
    assert not (tmp_path / "writer" / "truth").exists()


def _new_faults(**kw: object) -> Scenario:
    return Scenario(
        outposts=[OutpostSpec(A, "ta"), OutpostSpec(B, "tb", version="2024.2.1")],
        duration=60,
        interval=1.0,
        ack_latency=0.004,
        seed=11,
        faults=[
            Fault("crash", A, at=10.5, duration=2),
            Fault("interval_change", B, at=20, duration=15, delay=3.0),
            Fault("ack_drop", None, at=40, duration=6),
            Fault("ack_dup", None, at=50, duration=6, delay=0.002),
        ],
        **kw,  # type: ignore[arg-type]
    )


def test_a_crash_is_a_reset_then_a_new_process_and_no_instance_outage() -> None:
    table, truth = virtual_table(_new_faults())
    f = table_to_frames(table)
    a = f[f.outpost_uuid == A]
    assert a["instance_uuid"].nunique() == 2
    broke = a[(a.event == "close") & (a.close_code == 1006)]
    assert len(broke) == 1 and truth.seconds(broke["ts"].iloc[0]) == pytest.approx(10.5)
    assert (a["event"] == "error").sum() == 1  # the reset, as the recorder writes it
    assert truth.outages[truth.outages.level == "instance"].empty
    outp = truth.outages[truth.outages.level == "outpost"]
    assert outp["cause"].tolist() == ["crash"] and truth.seconds(outp["start"].iloc[0]) == pytest.approx(10.5)
    assert truth.instances.set_index("instance_uuid")["end_cause"].value_counts().to_dict() == {"end": 2, "crash": 1}


def test_an_interval_change_stretches_the_cadence_and_a_bad_server_drops_or_doubles_acks() -> None:
    table, truth = virtual_table(_new_faults())
    f = table_to_frames(table)
    b = f[(f.outpost_uuid == B) & (f.instruction_name == "HELLO")]
    gaps = b["ts"].diff().dt.total_seconds()
    sent = truth.seconds(b["ts"])
    assert gaps[(sent > 21) & (sent < 35)].between(2.85, 3.15).all()
    assert gaps[(sent > 38.5)].between(0.9, 1.1).all()  # a gap that starts in the window is long
    assert truth.outages.empty or set(truth.outages["cause"]) == {"crash"}  # not an outage
    acks = f[f.instruction_name == "ACK"]
    ack_s = truth.seconds(acks["ts"])
    hello_s = truth.seconds(f[f.instruction_name == "HELLO"]["ts"])
    # every third frame of each connection: no ACK in the drop window, two in the dup window
    n_h = lambda lo, hi: int(((hello_s >= lo) & (hello_s < hi)).sum())  # noqa: E731
    n_a = lambda lo, hi: int(((ack_s >= lo) & (ack_s < hi + 0.01)).sum())  # noqa: E731
    assert n_a(40, 46) < n_h(40, 46) and n_a(50, 56) > n_h(50, 56)
    assert n_a(30, 36) == n_h(30, 36)
    # the truth has one ACK per answered HELLO: the dropped ones are missing, the doubled counted once
    assert len(truth.acks) == len(hello_s) - (n_h(40, 46) - n_a(40, 46))


def test_a_late_capture_and_a_clock_step() -> None:
    late, truth = virtual_table(_new_faults(capture_start=11.0))
    f = table_to_frames(late)
    assert truth.seconds(f["ts"].min()) >= 11.0
    outp = truth.outages[truth.outages.level == "outpost"]
    assert truth.seconds(outp["start"].iloc[0]) == pytest.approx(11.0)  # clipped to the capture
    step = replace(_new_faults(), faults=[*_new_faults().faults, Fault("clock_step", None, at=30, delay=2.0)])
    stepped, truth2 = virtual_table(step)
    plain, _ = virtual_table(_new_faults())
    t_plain = plain.column("ts").cast(pa.int64()).to_numpy()
    t_step = np.sort(stepped.column("ts").cast(pa.int64()).to_numpy())
    moved = np.sort(np.where(t_plain >= truth2.start.value + 30 * 10**9, t_plain - 2 * 10**9, t_plain))
    assert np.array_equal(t_step, moved)  # only the capture's clock moved
    assert truth2.outages.equals(virtual_table(_new_faults())[1].outages)
