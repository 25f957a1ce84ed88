"""The capture schema: one definition of the columns, conversions both ways."""

from __future__ import annotations

import pyarrow as pa

from wsreplay.events import ConnectionLog
from wsreplay.protocol import encode_hello, hello_args
from wsreplay.schema import COLUMNS, SCHEMA, VERSION_KEY, frames_to_table, rows_to_table, table_to_frames


def test_schema_carries_the_format_version():
    assert SCHEMA.metadata[VERSION_KEY] == b"1"
    assert SCHEMA.names == list(COLUMNS)


def test_rows_to_table_matches_arrow_from_pylist(t0):
    log = ConnectionLog("cap", "/ws/outpost/pk/", "instance_uuid=i", conn_id="c")
    rows = [
        log.open(t0, status=101, user_agent="ua", peer="127.0.0.1:1"),
        log.message(t0 + 1, "to_server", encode_hello(hello_args(uuid="i", version="v"))),
        log.message(t0 + 2, "to_peer", b"\x00"),
        log.error(t0 + 3, "refused", status=403),
        log.close(t0 + 4, "to_peer", code=1006),
        {"ts": t0 + 5, "unknown_key": 1},
    ]
    assert rows_to_table(rows).equals(pa.Table.from_pylist(rows, schema=SCHEMA))
    assert rows_to_table([]).num_rows == 0


def test_frames_round_trip_through_pandas(t0):
    log = ConnectionLog("cap", "/ws/client/")
    table = rows_to_table([log.open(t0), log.message(t0 + 1, "to_peer", "{}"), log.close(t0 + 2, "to_peer", code=1000)])
    assert frames_to_table(table_to_frames(table)).equals(table)
