"""The replay's cheap recording builds exactly the rows a ConnectionLog builds (literal frames, no I/O)."""

from __future__ import annotations

import pyarrow as pa
from replay_support import HELLO, PK

from wsreplay.events import ConnectionLog
from wsreplay.playback.observe import observe
from wsreplay.playback.recording import ConnectionRecording, observed_connections, recordings_table
from wsreplay.protocol import encode_ack, encode_hello, encode_notice, hello_args
from wsreplay.schema import rows_to_table

MS = 1_000_000

# (path, query, frames): each frame is (direction, data, opcode)
CONNECTIONS = [
    (  # the instance is in the query string
        f"/ws/outpost/{PK}/",
        "instance_uuid=inst-1&attempt=0",
        [("to_server", HELLO, None), ("to_peer", encode_ack(), None), ("to_server", HELLO, None)],
    ),
    (  # no instance in the query: the HELLO names it, and the rows after it carry it
        f"/ws/outpost/{PK}/",
        "",
        [
            ("to_peer", encode_ack(), None),
            ("to_server", encode_hello(hello_args(uuid="inst-2", version="2024.1")), None),
            ("to_peer", encode_ack(), None),
            ("to_server", b"\x00\x01binary", None),
            ("to_server", b"\xff not utf-8", "text"),
        ],
    ),
    ("/ws/client/", "", [("to_peer", encode_notice("hi"), None), ("to_server", "not json", None)]),
]


def _both(t0: int) -> tuple[list[dict], dict[str, ConnectionRecording]]:
    rows, recordings = [], {}
    for k, (path, query, frames) in enumerate(CONNECTIONS):
        plain = ConnectionLog("cap", path, query, conn_id=f"c{k}")
        cheap = ConnectionRecording(ConnectionLog("cap", path, query, conn_id=f"c{k}", cache={}))
        recordings[f"recorded-{k}"] = cheap
        rows.append(plain.open(t0, status=101, user_agent="ua"))
        cheap.add(cheap.log.open(t0, status=101, user_agent="ua"))
        for i, (direction, data, opcode) in enumerate(frames):
            rows.append(plain.message(t0 + (i + 1) * MS, direction, data, opcode=opcode))
            cheap.message(t0 + (i + 1) * MS, direction, data, opcode)
        rows.append(plain.close(t0 + 99 * MS, "to_peer", code=1011, reason="bye"))
        cheap.add(cheap.log.close(t0 + 99 * MS, "to_peer", code=1011, reason="bye"))
    return rows, recordings


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([("conn_id", "ascending"), ("seq", "ascending")])


def test_the_table_is_the_one_the_log_rows_make(t0):
    rows, recordings = _both(t0)
    assert sum(len(r.frames) for r in recordings.values()) >= 6  # most frames took the cheap way
    assert _sorted(recordings_table(recordings.values())).equals(_sorted(rows_to_table(rows)))


def test_the_summary_and_the_observations_are_the_ones_of_the_rows(t0):
    rows, recordings = _both(t0)
    observed = observed_connections(recordings)
    for k, rec in enumerate(recordings.values()):
        mine = [r for r in rows if r["conn_id"] == f"c{k}"]
        expected = observe(mine)
        assert observed[f"recorded-{k}"] == expected
        sent = sum(r["event"] == "message" and r["direction"] == "to_server" for r in mine)
        assert rec.summary() == (101, sent, len(expected.received), 1011, "server")
