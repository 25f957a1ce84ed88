"""Sealing stream segments: batch by batch when in time order, sorted otherwise."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

import wsreplay.store.segments as segments
from wsreplay import ConnectionLog, load
from wsreplay.schema import SCHEMA, rows_to_table
from wsreplay.store.segments import STREAM_OPTIONS, read_stream, seal_stream


def write_stream(path, batches, *, cut: int = 0) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, SCHEMA, options=STREAM_OPTIONS) as w:
        for rows in batches:
            w.write_table(rows_to_table(rows))
    if cut:
        path.write_bytes(path.read_bytes()[:-cut])


def rows(t0, times):
    log = ConnectionLog("cap", "/ws/client/", conn_id="c")
    return [log.message(t0 + t, "to_peer", f'{{"message_type": "message", "message": "{t}"}}') for t in times]


def test_in_order_segment_is_copied_in_row_groups(tmp_path, t0, monkeypatch):
    monkeypatch.setattr(segments, "ROW_GROUP_SIZE", 4)
    stream = tmp_path / "s.arrows"
    write_stream(stream, [rows(t0, range(i * 3, i * 3 + 3)) for i in range(5)])
    target = tmp_path / "s.parquet"
    assert seal_stream(stream, target) == 15
    assert pq.ParquetFile(target).metadata.num_row_groups == 3  # 6 + 6 + 3 rows
    assert read_stream(stream).equals(pq.read_table(target).replace_schema_metadata(SCHEMA.metadata))
    assert not (tmp_path / "s.parquet.tmp").exists()


def test_out_of_order_segment_is_sorted(tmp_path, t0):
    stream = tmp_path / "s.arrows"
    write_stream(stream, [rows(t0, [5, 6]), rows(t0, [1, 2])])
    target = tmp_path / "s.parquet"
    assert seal_stream(stream, target) == 4
    assert load(target)["ts"].is_monotonic_increasing
    assert not (tmp_path / "s.parquet.tmp").exists()


def test_cut_and_empty_segments(tmp_path, t0):
    stream = tmp_path / "s.arrows"
    write_stream(stream, [rows(t0, [1, 2]), rows(t0, [3, 4])], cut=9)
    assert seal_stream(stream, tmp_path / "s.parquet") == 2
    empty = tmp_path / "e.arrows"
    write_stream(empty, [])
    assert seal_stream(empty, tmp_path / "e.parquet") == 0
    assert not (tmp_path / "e.parquet").exists()
