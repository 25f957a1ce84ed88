"""A simulated fleet with outages and browsers through the recorder: the capture matches what each side sent."""

from __future__ import annotations

import asyncio

import pandas as pd
from record_support import COOKIE, PK, PK2, TOKEN, TOKEN2, assert_no_secret_bytes, mock

from wsreplay import CaptureWriter, load
from wsreplay.record import Recorder
from wsreplay.sim import Fault, Notice, OutpostSpec, Scenario, run_fleet_async


def _by_conn(frames: pd.DataFrame) -> dict[tuple[str, str, int], pd.DataFrame]:
    """Connections keyed by (endpoint, query, n-th connection with that query)."""
    out: dict[tuple[str, str, int], pd.DataFrame] = {}
    firsts = frames.sort_values(["ts", "seq"]).groupby("conn_id", observed=True).head(1)
    seen: dict[tuple[str, str], int] = {}
    for row in firsts.itertuples():
        if row.event != "open":
            continue
        key = (str(row.endpoint), str(row.query))
        n = seen.get(key, 0)
        seen[key] = n + 1
        out[(*key, n)] = frames[frames.conn_id == row.conn_id].sort_values("seq")
    return out


def _msgs(conn: pd.DataFrame, direction: str) -> list[str]:
    m = conn[(conn.event == "message") & (conn.direction == direction)]
    return list(m.payload)


def test_fleet_with_outages_and_browsers_is_captured_exactly(tmp_path):
    scenario = Scenario(
        outposts=[OutpostSpec(PK, TOKEN, replicas=2), OutpostSpec(PK2, TOKEN2)],
        duration=4.0,
        interval=0.1,
        ack_latency=0.001,
        browsers=2,
        notices=[Notice(at=0.8, message="config saved", level="success"), Notice(at=3.2, message="bye")],
        faults=[
            Fault("disconnect", PK, at=0.9, duration=0.4, replica=0),
            Fault("silent", PK, at=0.5, duration=0.5, replica=1),
            Fault("restart", PK2, at=1.2, duration=0.2),
            Fault("server_restart", None, at=2.2, duration=0.3),
        ],
    )
    rec_out, fleet_out = tmp_path / "recorded", tmp_path / "fleet-side"

    async def main():
        async with mock(sessions={COOKIE}) as ak:
            async with Recorder(ak.url, out=rec_out, flush_interval=0.2) as rec:
                fleet_writer = CaptureWriter(fleet_out)
                try:
                    truth = await run_fleet_async(scenario, rec.url, mock=ak, capture=fleet_writer, session=COOKIE)
                finally:
                    await asyncio.to_thread(fleet_writer.close)
                return truth, rec.stats.connections_total

    truth, total = asyncio.run(main())
    recorded, fleet_side = load(rec_out), load(fleet_out)
    rec_conns, fleet_conns = _by_conn(recorded), _by_conn(fleet_side)
    assert total == len(rec_conns) == len(fleet_conns) >= 9  # 3 replicas + 2 browsers, reconnects, new instance
    assert set(rec_conns) == set(fleet_conns)
    for key, fc in fleet_conns.items():
        rc = rec_conns[key]
        sent, got = _msgs(fc, "to_server"), _msgs(fc, "to_peer")
        rsent, rgot = _msgs(rc, "to_server"), _msgs(rc, "to_peer")
        assert rsent == sent, key  # byte-identical, same order
        assert rgot[: len(got)] == got, key  # a frame in flight when a socket died may reach only the recorder
        assert len(rgot) - len(got) <= 1, key
        for column in ("endpoint", "outpost_uuid", "instance_uuid"):
            assert rc[column].astype(str).tolist() == [fc[column].astype(str).iloc[0]] * len(rc), (key, column)
        assert rc.user_agent.iloc[0] == fc.user_agent.iloc[0]
    # outages: the server restart's 1012 reached every open connection and is recorded as the server's close
    closes = recorded[recorded.event == "close"]
    assert (closes.close_code == 1012).sum() >= 5
    assert set(closes[closes.close_code == 1012].direction) == {"to_peer"}
    # the dropped network is an abrupt end on the recorder's side too
    assert ((closes.close_code == 1006) & (closes.direction == "to_server")).any()
    # refused attempts while authentik was down: same attempts, recorder answered 502
    fleet_refused = fleet_side[fleet_side.event == "error"]
    rec_refused = recorded[(recorded.event == "error") & recorded.status.notna()]
    assert sorted(fleet_refused["query"].dropna()) == sorted(rec_refused["query"])
    assert set(rec_refused.status) <= {502}
    notices = recorded[(recorded.endpoint == "client") & (recorded.event == "message")]
    assert set(notices.message) == {"config saved", "bye"}
    # every HELLO the simulated fleet's truth says reached the server went through the recorder
    hellos = recorded[(recorded.instruction_name == "HELLO") & (recorded.direction == "to_server")]
    assert truth.hellos["arrived"].notna().sum() <= len(hellos) <= len(truth.hellos)
    assert_no_secret_bytes(rec_out)
