"""End to end: the simulator, the recorder, the replayer and the replay server together on 127.0.0.1."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

import wsreplay
from wsreplay.events import ConnectionLog
from wsreplay.playback import ReplayServer, replay_async
from wsreplay.protocol import encode_trigger_update
from wsreplay.record import Recorder
from wsreplay.schema import frames_to_table, rows_to_table, table_to_frames
from wsreplay.sim import Scenario, run_fleet_async, simulate_virtual
from wsreplay.sim.mock import MockAuthentik
from wsreplay.store import CaptureWriter

TRIGGER_AT = 0.35  # seconds after each connection's open


def scenario() -> Scenario:
    return Scenario.generate(outposts=3, duration=1.2, interval=0.25, seed=7, faults=False)


def with_triggers(frames: pd.DataFrame) -> pd.DataFrame:
    """The capture plus one TRIGGER_UPDATE per connection, pushed TRIGGER_AT s after its open."""
    opens = frames[frames["event"] == "open"]
    rows = []
    for row in opens.itertuples():
        log = ConnectionLog(str(row.capture_id), str(row.path), str(row.query), conn_id=str(row.conn_id))
        log.seq = 10_000
        rows.append(log.message(int(row.ts.value) + int(TRIGGER_AT * 1e9), "to_peer", encode_trigger_update()))
    table = pd.concat([frames, table_to_frames(rows_to_table(rows))], ignore_index=True)
    return table_to_frames(frames_to_table(table.sort_values(["ts", "seq"], kind="stable")))


@pytest.fixture
def virtual_capture(tmp_path):
    sc = scenario()
    simulate_virtual(sc, out=tmp_path / "virtual")
    return sc, wsreplay.load(tmp_path / "virtual")


def test_the_fleet_gets_acks_and_the_recorded_trigger_updates_from_a_served_capture(virtual_capture, tmp_path):
    sc, frames = virtual_capture
    served = with_triggers(frames)

    async def main():
        async with ReplayServer(served, record=True) as server:
            with CaptureWriter(tmp_path / "fleet") as writer:
                await run_fleet_async(sc, server.url, capture=writer)
            return server.stats, server.frames()

    stats, pushed = asyncio.run(main())
    # the server pushed each TRIGGER_UPDATE at its recorded offset from the connection's open
    push_open = pushed[pushed["event"] == "open"].set_index("conn_id")["ts"]
    push_trig = pushed[pushed["instruction_name"] == "TRIGGER_UPDATE"]
    server_offsets = (
        push_trig["ts"].to_numpy(dtype="datetime64[ns]")
        - push_open.reindex(push_trig["conn_id"].astype(str)).to_numpy(dtype="datetime64[ns]")
    ) / np.timedelta64(1, "s")
    assert len(server_offsets) == stats.connections and np.all(server_offsets >= TRIGGER_AT)
    seen = wsreplay.load(tmp_path / "fleet")
    msgs = seen[seen["event"] == "message"]
    assert stats.connections == frames["conn_id"].nunique()
    # every HELLO the outposts sent got its ACK from the served capture (but one the fleet sent as it closed)
    closed = seen[seen["event"] == "close"].set_index("conn_id")["ts"]
    hellos = msgs[msgs["instruction_name"] == "HELLO"]
    deadline = closed.reindex(hellos["conn_id"].astype(str)).to_numpy(dtype="datetime64[ns]") - np.timedelta64(50, "ms")
    settled = hellos[hellos["ts"].to_numpy(dtype="datetime64[ns]") < deadline]
    acks = msgs[msgs["instruction_name"] == "ACK"].groupby("conn_id", observed=True).size()
    wanted = settled.groupby("conn_id", observed=True).size()
    assert wanted.min() >= 2 and (acks.reindex(wanted.index) >= wanted).all()
    # and every connection got the recorded TRIGGER_UPDATE, never before its recorded offset from the open
    opened = seen[seen["event"] == "open"].set_index("conn_id")["ts"]
    triggers = msgs[msgs["instruction_name"] == "TRIGGER_UPDATE"]
    assert set(triggers["conn_id"]) == set(opened.index)
    t_trigger = triggers["ts"].to_numpy(dtype="datetime64[ns]")
    t_open = opened.reindex(triggers["conn_id"].astype(str)).to_numpy(dtype="datetime64[ns]")
    offsets = (t_trigger - t_open) / np.timedelta64(1, "s")
    # seen from the outposts (whose open row is stamped when their own loop gets to it: on a busy
    # machine a little after the server's open), the trigger still arrives about that late
    assert np.all(offsets >= TRIGGER_AT - 0.1)


def test_simulate_record_replay_round_trip(virtual_capture, tmp_path):
    """The fleet runs through the real recorder in front of a served capture; replaying the recording
    against the same server passes the check, and against a server that answers differently it fails
    with a diff naming the connection, the frame and the difference."""
    sc, frames = virtual_capture

    async def main():
        async with ReplayServer(frames) as upstream:
            recorder = Recorder(upstream.url, out=tmp_path / "recorded", flush_interval=0.2)
            async with recorder:
                await run_fleet_async(sc, recorder.url)
            recorded = wsreplay.load(tmp_path / "recorded")
            good = await replay_async(recorded, upstream.url, speed=4, check=True, require_tokens=False)
        changed = frames.copy()
        changed["instruction_name"] = changed["instruction_name"].astype(object)
        ack = changed["instruction_name"] == "ACK"
        changed.loc[ack, "payload"] = encode_trigger_update()
        changed.loc[ack, "instruction_name"] = "TRIGGER_UPDATE"
        async with ReplayServer(changed) as other:
            bad = await replay_async(
                recorded, other.url, speed="max", check=True, require_tokens=False, reply_timeout=0.3
            )
        return recorded, good, bad

    recorded, good, bad = asyncio.run(main())
    assert recorded["conn_id"].nunique() == frames["conn_id"].nunique()
    assert good.check.ok, str(good.check)
    assert good.exit_status() == 0
    assert not bad.check.ok and bad.exit_status() == 1
    first = bad.check.mismatches[0]
    assert first.conn_id in set(recorded["conn_id"]) and first.frame == 1
    text = str(bad.check)
    assert f"connection {first.conn_id[:8]}" in text and "frame #1" in text and "expected ACK" in text


def test_simulate_record_replay_against_the_mock_authentik(tmp_path):
    """Fleet -> recorder -> MockAuthentik (plus a malformed frame the mock answers by dropping the
    connection); replaying the recording against the mock passes --check, against a changed mock it
    (one that stopped ACKing) fails naming the connection, the frame and the difference."""
    sc = scenario()
    tokens = {o.pk: o.token for o in sc.outposts}
    pk = sc.outposts[0].pk

    async def main():
        async with MockAuthentik(outposts=tokens) as ak:
            async with Recorder(ak.url, out=tmp_path / "recorded", flush_interval=0.2) as recorder:
                await run_fleet_async(sc, recorder.url)
                url = recorder.ws_url + f"/ws/outpost/{pk}/"
                async with connect(url, additional_headers={"Authorization": f"Bearer {tokens[pk]}"}) as ws:
                    await ws.send("this is not json")
                    with pytest.raises(ConnectionClosed):
                        await asyncio.wait_for(ws.recv(), 10)
            recorded = wsreplay.load(tmp_path / "recorded")
            good = await replay_async(recorded, ak.url, speed=4, tokens=tokens, check=True)
        async with MockAuthentik(outposts=tokens) as changed:
            changed.stall(600, drop=True)  # changed: it no longer answers HELLOs
            bad = await replay_async(recorded, changed.url, speed="max", tokens=tokens, check=True, reply_timeout=0.3)
        return recorded, good, bad

    recorded, good, bad = asyncio.run(main())
    closes = recorded[recorded["event"] == "close"]
    assert 1006 in set(closes["close_code"].dropna())  # the recorder saw the mock drop the bad frame
    assert good.check.ok, str(good.check)
    assert good.exit_status() == 0 and good.connections["as_recorded"].all()
    assert not bad.check.ok and bad.exit_status() == 1
    text = str(bad.check)
    first = bad.check.mismatches[0]
    assert f"connection {first.conn_id[:8]}" in text and "frame #1" in text
    assert "expected ACK (reply to peer frame #1 HELLO" in text and "got nothing" in text
