"""RowSink's row observers: they see exactly the decoded rows the capture gets, and cannot break it."""

from __future__ import annotations

import pyarrow as pa

from wsreplay import load
from wsreplay.events import ConnectionLog
from wsreplay.protocol import encode_hello, hello_args
from wsreplay.record.sink import RowSink
from wsreplay.store import CaptureWriter

T0 = 1_700_000_000_000_000_000


class Keep:
    def __init__(self) -> None:
        self.tables: list[pa.Table] = []

    def observe(self, table: pa.Table) -> None:
        self.tables.append(table)


class Broken:
    def observe(self, table: pa.Table) -> None:
        raise RuntimeError("observer bug")


def _rows(n: int) -> list[dict]:
    log = ConnectionLog("cap", "/ws/outpost/pk/?instance_uuid=i1")
    rows = [log.open(T0)]
    for i in range(n):
        rows.append(log.message(T0 + 2 * i + 1, "to_server", encode_hello(hello_args(uuid="i1", version="2024.2.1"))))
        rows.append(log.message(T0 + 2 * i + 2, "to_peer", '{"instruction": 0, "args": {}}'))
    return rows


def test_observers_see_every_written_row_decoded_and_a_failing_one_is_counted(tmp_path):
    keep = Keep()
    writer = CaptureWriter(tmp_path, capture_id="cap", autoflush=False)
    sink = RowSink(writer, flush_interval=60.0, observers=[Broken(), keep])
    rows = _rows(200)  # more than one chunk
    for row in rows:
        sink.put(row)
    assert sink.flush()
    sink.close()
    seen = pa.concat_tables(keep.tables)
    assert seen.num_rows == len(rows) == len(load(tmp_path))
    assert seen.column("instruction_name").to_pylist()[1:3] == ["HELLO", "ACK"]
    assert set(seen.column("version").drop_null().to_pylist()) == {"2024.2.1"}
    assert len(keep.tables) > 1
    assert sink.observer_errors == len(keep.tables)
    assert sink.last_observer_error is not None and "observer bug" in sink.last_observer_error


def test_a_sink_without_observers_writes_as_before(tmp_path):
    writer = CaptureWriter(tmp_path, capture_id="cap", autoflush=False)
    sink = RowSink(writer, flush_interval=60.0)
    for row in _rows(3):
        sink.put(row)
    sink.close()
    assert len(load(tmp_path)) == 7
    assert sink.observer_errors == 0
