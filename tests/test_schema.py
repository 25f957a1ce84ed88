"""The capture schema: one definition of the columns, conversions both ways."""

from __future__ import annotations

import pyarrow as pa
import pytest

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


def test_column_array_is_what_pa_array_gives():
    from datetime import UTC, datetime

    import pyarrow as pa

    from wsreplay.schema import COLUMNS, column_array

    cases = {
        "payload": ["a", None, "é☃", "", None],
        "payload_bytes": [b"\x00\xff", None, b"", bytearray(b"x"), None],
        "instruction": [0, None, 3, None, -1],
        "close_code": [1000, None, None, None, 4000],
        "seq": [0, 1, 2, 2**40, None],
        "ts": [1, None, 2, 3, 4],
        "status": [None, None, None, None, None],
    }
    for name, values in cases.items():
        got = column_array(values, COLUMNS[name])
        assert got.equals(pa.array(values, type=COLUMNS[name])), name
        got.validate(full=True)
    # what it cannot build from buffers goes to pa.array: same result, or the same error
    when = [datetime(2026, 11, 28, tzinfo=UTC), None]
    assert column_array(when, COLUMNS["ts"]).equals(pa.array(when, type=COLUMNS["ts"]))
    with pytest.raises(pa.ArrowInvalid):
        column_array([70_000], COLUMNS["instruction"])
