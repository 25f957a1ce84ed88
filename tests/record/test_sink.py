"""RowSink's row observers: they see exactly the decoded rows the capture gets, and cannot break it."""

from __future__ import annotations

import pyarrow as pa

from wsreplay import load
from wsreplay.events import ConnectionLog
from wsreplay.protocol import encode_hello, hello_args
from wsreplay.record import sink as sink_module
from wsreplay.record.sink import RowSink
from wsreplay.store import CaptureWriter

T0 = 1_700_000_000_000_000_000
HELLO = encode_hello(hello_args(uuid="i-1", version="2023.10.0")).encode()


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
    rows = _rows(sink_module._BATCH // 2 + 1)  # more than one batch
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


class Seen:
    def __init__(self) -> None:
        self.names: list[str | None] = []

    def observe(self, table) -> None:
        self.names += table.column("instruction_name").to_pylist()


def test_observers_get_decoded_tables_and_errors_are_counted(tmp_path):
    seen = Seen()
    sink = RowSink(CaptureWriter(tmp_path / "cap", autoflush=False), flush_interval=60, observers=[Broken(), seen])
    log = ConnectionLog("cap", "/ws/outpost/pk/")
    sink.put(log.open(1))
    sink.put((log, 2, log.seq, "to_server", "text", HELLO, False))
    log.seq += 1
    assert sink.flush()
    sink.put((log, log.close(3, "to_server", code=1000)))
    sink.close()
    assert seen.names == [None, "HELLO", None]
    assert sink.observer_errors == 2
    frames = load(tmp_path / "cap")
    assert list(frames.instance_uuid.astype(object)[1:]) == ["i-1", "i-1"]  # the close row too
