"""The row observer against the offline analysis, on a simulated capture fed as the recorder feeds it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import wsreplay
from wsreplay.metrics.rows import RowMetrics
from wsreplay.schema import conform_table, table_to_frames
from wsreplay.sim import Fault, Notice, OutpostSpec, Scenario, virtual_table

A, B, C = (f"00000000-0000-4000-8000-00000000000{i}" for i in (1, 2, 3))
S = 1_000_000_000


def scenario(jitter: float) -> Scenario:
    return Scenario(
        outposts=[OutpostSpec(A, replicas=2), OutpostSpec(B), OutpostSpec(C)],
        duration=120.0,
        interval=1.0,
        jitter=jitter,
        ack_latency=0.003,
        browsers=1,
        notices=[Notice(at=5.0, message="saved", level="success"), Notice(at=9.0, message="x", level="warning")],
        faults=[
            Fault("disconnect", A, at=10.0, duration=4.0, replica=0),
            Fault("disconnect", A, at=11.0, duration=6.0, replica=1),  # both replicas gone: A is down
            Fault("silent", B, at=30.0, duration=5.0),
            Fault("restart", C, at=50.0, duration=3.0),
            Fault("upgrade", C, at=70.0, duration=2.0),
            Fault("server_restart", None, at=90.0, duration=4.0),
            Fault("latency_spike", None, at=100.0, duration=5.0, delay=0.3),
        ],
        seed=7,
    )


def replay_through(table: pa.Table, metrics: RowMetrics, step_s: float):
    """Feed *table* in time order in chunks of at most 128 rows (as the sink does) and snapshot every *step_s*."""
    ts = table["ts"].cast(pa.int64()).to_numpy()
    fed = 0
    for t in range(int(ts[0]), int(ts[-1]) + 1, int(step_s * S)):
        upto = int(np.searchsorted(ts, t, side="right"))
        for start in range(fed, upto, 128):
            metrics.observe(table.slice(start, min(128, upto - start)))
        fed = upto
        yield t, metrics.snapshot(t)


def offline_up(outages: pd.DataFrame, first_refresh: dict[str, int], pk: str, t: int) -> bool | None:
    if pk not in first_refresh or t < first_refresh[pk]:
        return None
    o = outages[outages.outpost_uuid == pk]
    starts, ends = o.start.astype("int64").to_numpy(), o.end.astype("int64").to_numpy()
    return not bool(((starts <= t) & (t < ends)).any())


@pytest.mark.parametrize(("jitter", "interval"), [(0.0, None), (0.05, 1.0)])
def test_live_up_is_the_offline_outages_at_every_moment(jitter, interval):
    table, _truth = virtual_table(scenario(jitter))
    table = conform_table(table)
    frames = table_to_frames(table)
    outages = wsreplay.outages(frames, level="outpost", interval=interval)
    assert set(outages.cause) >= {"disconnect", "silent", "restart", "upgrade", "upstream_close"}
    refresh = frames[
        (frames.endpoint == "outpost")
        & (frames.direction == "to_server")
        & frames.instruction.notna()
        & (frames.instruction_name != "ACK")
    ]
    first_refresh = refresh.groupby("outpost_uuid", observed=True).ts.min().astype("int64").to_dict()
    metrics = RowMetrics(interval=interval, batch_rows=1000)
    compared = down = 0
    for t, snap in replay_through(table, metrics, 0.05):
        for state in snap.outposts:
            assert state.up == offline_up(outages, first_refresh, state.outpost, t), (state, t)
            compared += 1
            down += state.up is False
    assert compared > 6000 and down > 100


def test_counts_and_ack_latency_are_the_captures():
    table, _truth = virtual_table(scenario(0.05))
    table = conform_table(table)
    frames = table_to_frames(table)
    metrics = RowMetrics(batch_rows=300)
    for start in range(0, table.num_rows, 128):
        metrics.observe(table.slice(start, 128))
    snap = metrics.snapshot(int(table["ts"].cast(pa.int64()).to_numpy()[-1]) + 1)
    assert snap.rows == len(frames)
    msgs = frames[frames.event == "message"].astype({"instruction_name": "object"}).fillna({"instruction_name": ""})
    expected = msgs.groupby(["endpoint", "direction", "instruction_name"], observed=True).size()
    assert snap.frames == {k: int(v) for k, v in expected.items()}
    assert snap.notices == {"success": 1, "warning": 1}
    lat = wsreplay.ack_latency(frames, pairing="next")
    buckets, total, count = snap.latency["outpost"]
    assert count == lat.latency_s.notna().sum() > 300
    assert total == pytest.approx(lat.latency_s.sum())
    assert buckets[-1][1] == count
    assert dict(buckets)[0.5] - dict(buckets)[0.25] == ((lat.latency_s > 0.25) & (lat.latency_s <= 0.5)).sum() > 0
    opened = set(frames[frames.event == "open"].conn_id)
    ended = set(frames[frames.event.isin(["close", "error"])].conn_id) & opened
    assert sum(snap.connections_open.values()) == len(opened - ended)


def test_the_recorders_coded_batches_give_the_snapshots_tables_give():
    # The recorder hands RowMetrics each batch as keys and values (no pyarrow); any other caller a table.
    from wsreplay.events import ConnectionLog
    from wsreplay.record.batch import Coded, KindCache, entries_to_batch
    from wsreplay.store.batches import batch_to_table

    table, _truth = virtual_table(scenario(0.05))
    logs: dict[str, ConnectionLog] = {}
    entries: list = []
    for row in conform_table(table).to_pylist():
        log = logs.get(row["conn_id"])
        if log is None:
            path = row["path"] + (f"?{row['query']}" if row["query"] else "")
            log = logs[row["conn_id"]] = ConnectionLog("cap", path, conn_id=row["conn_id"])
        ts = row["ts"].value
        if row["event"] == "message":
            data = row["payload"].encode() if row["payload"] is not None else row["payload_bytes"]
            entries.append((log, ts, row["seq"], row["direction"], row["opcode"], data, False))
        else:
            entries.append({**row, "ts": ts})
    coded_metrics, table_metrics = RowMetrics(batch_rows=300), RowMetrics(batch_rows=300)
    cache, kinds = {}, KindCache(limit=40)  # cleared now and then, as under traffic that does not repeat
    moments = 0
    for start in range(0, len(entries), 128):
        coded = Coded(RowMetrics.CODED_COLUMNS)
        message = entries_to_batch(entries[start : start + 128], cache, kinds, coded)
        coded_metrics.observe_coded(coded)
        table_metrics.observe(batch_to_table(message))
        now = int(batch_to_table(message)["ts"].cast(pa.int64()).to_numpy()[-1])
        assert coded_metrics.snapshot(now) == table_metrics.snapshot(now)  # after every batch
        moments += 1
    now = int(table["ts"].cast(pa.int64()).to_numpy().max()) + 1
    last = coded_metrics.snapshot(now)
    assert last == table_metrics.snapshot(now)
    assert moments > 5 and last.rows == len(entries) and last.latency["outpost"][2] > 300 and last.notices
