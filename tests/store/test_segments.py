"""Sealing stream segments: batch by batch when in time order, sorted otherwise."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wsreplay.store.segments as segments
from wsreplay import ConnectionLog, load, recover
from wsreplay.exceptions import CaptureDamageWarning, CaptureFormatError
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


# ------------------------------------------------------------------ damage in the middle of a stream


def write_stream_at(path, batches) -> list[tuple[int, int]]:
    """Write a stream; return the byte range of each record batch message (as the writer's file offsets)."""
    spans = []
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, SCHEMA, options=STREAM_OPTIONS) as w:
        for rows_ in batches:
            start = sink.tell()
            w.write_table(rows_to_table(rows_))
            spans.append((start, sink.tell()))
    return spans


def damage(path, at: int, length: int = 24) -> None:
    data = bytearray(path.read_bytes())
    data[at : at + length] = b"\x13" * length
    path.write_bytes(bytes(data))


def payloads(table) -> list[str]:
    return table.column("payload").to_pylist()


@pytest.mark.parametrize("where", ["data", "metadata"])
def test_a_damaged_middle_batch_is_skipped_with_a_warning_and_the_rest_kept(tmp_path, t0, where):
    batches = [rows(t0, range(i * 10, i * 10 + 3 + i)) for i in range(4)]  # 3, 4, 5, 6 rows
    stream = tmp_path / "s.arrows"
    spans = write_stream_at(stream, batches)
    start, end = spans[1]
    damage(stream, (start + end) // 2 if where == "data" else start + 12)
    with pytest.warns(CaptureDamageWarning) as caught:
        table = read_stream(stream)
    kept = [r["payload"] for b in (batches[0], batches[2], batches[3]) for r in b]
    assert payloads(table) == kept
    message = str(caught[0].message)
    assert f"bytes {start}-{end}" in message and f"({end - start}" not in message
    assert "kept 3 row(s) before and 11 row(s) after the damage" in message
    if where == "data":  # the batch's own metadata still tells how many rows it held
        assert "lost 1 record batch(es) with 4 row(s)" in message
    else:
        assert "row count is unknown" in message


def test_sealing_and_recover_keep_the_rows_after_the_damage_and_report_it(tmp_path, t0):
    batches = [rows(t0, range(i * 10, i * 10 + 3)) for i in range(3)]
    stream = tmp_path / "cap-00000.arrows"
    spans = write_stream_at(stream, batches)
    damage(stream, (spans[1][0] + spans[1][1]) // 2)
    with pytest.warns(CaptureDamageWarning, match="kept 3 row.s. before and 3 row.s. after"):
        report = recover(tmp_path)
    assert report.rows == 6 and len(report.damaged) == 1
    assert "damaged" in str(report)
    assert payloads(pq.read_table(tmp_path / "cap-00000.parquet")) == [
        r["payload"] for b in (batches[0], batches[2]) for r in b
    ]


def test_a_tail_cut_inside_the_last_batch_is_not_damage(tmp_path, t0):
    stream = tmp_path / "s.arrows"
    spans = write_stream_at(stream, [rows(t0, [1, 2]), rows(t0, [3, 4])])
    data = stream.read_bytes()
    for cut in (spans[1][0] + 3, spans[1][0] + 100, spans[1][1] - 1):
        stream.write_bytes(data[:cut])
        assert len(read_stream(stream)) == 2  # no warning: pytest turns one into an error
    stream.write_bytes(data[: spans[1][1]] + b"\0" * 4096)  # a crash left zeros after the last batch
    assert len(read_stream(stream)) == 4


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.integers(0, 10**6), length=st.integers(1, 64), fill=st.binary(min_size=1, max_size=1))
def test_damage_anywhere_is_a_clear_error_or_a_warning_never_a_crash(tmp_path, t0, at, length, fill):
    import warnings

    batches = [rows(t0, range(i * 10, i * 10 + 3)) for i in range(4)]
    stream = tmp_path / "fuzz.arrows"
    write_stream_at(stream, batches)
    data = bytearray(stream.read_bytes())
    at %= len(data)
    data[at : at + length] = fill * length
    stream.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            table = read_stream(stream)
        except CaptureFormatError as exc:
            assert "\n" not in str(exc)
            return
    assert table.num_rows <= 12
    assert all(issubclass(w.category, CaptureDamageWarning) for w in caught)
