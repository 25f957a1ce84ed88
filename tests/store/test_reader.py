"""load, save and recover: round trips, filters, crashes and files that are not captures."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_support import HOUR, fleet_rows, row_keys, write_beside

from wsreplay import CaptureWriter, load, recover, save
from wsreplay.exceptions import CaptureFormatError, CaptureNotFoundError, CaptureVersionError, ConfigurationError
from wsreplay.schema import COLUMNS, SCHEMA, VERSION_KEY, empty_frames, rows_to_table
from wsreplay.store.segments import read_stream, write_parquet


def write_capture(path, rows) -> None:
    with CaptureWriter(path, capture_id="cap", autoflush=False) as w:
        w.write_many(rows)


def test_dtypes_are_documented_ones(tmp_path, t0):
    write_capture(tmp_path, fleet_rows(t0))
    frames = load(tmp_path)
    assert list(frames.columns) == list(COLUMNS)
    assert str(frames["ts"].dtype) == "datetime64[ns, UTC]"
    for col in ("endpoint", "event", "direction", "instruction_name", "outpost_uuid", "conn_id"):
        assert isinstance(frames[col].dtype, pd.CategoricalDtype), col
    assert str(frames["instruction"].dtype) == "Int16"
    assert str(frames["close_code"].dtype) == "Int32"
    assert str(frames["seq"].dtype) == "Int64"
    assert frames["ts"].is_monotonic_increasing
    assert [str(d) for d in empty_frames().dtypes] == [str(d) for d in frames.dtypes]


def test_filters(tmp_path, t0):
    write_capture(tmp_path, fleet_rows(t0))
    frames = load(tmp_path)
    start = pd.Timestamp(t0 + HOUR // 2, tz="UTC")
    end = pd.Timestamp(t0 + HOUR, tz="UTC")
    part = load(tmp_path, start=start, end=end)
    expected = frames[(frames.ts >= start) & (frames.ts < end)]
    assert len(part) == len(expected) > 0
    assert set(load(tmp_path, endpoint="client")["endpoint"]) == {"client"}
    only = load(tmp_path, outpost=["pk1", "pk2"])
    assert set(only["outpost_uuid"].astype(str)) == {"pk1", "pk2"}
    naive = load(tmp_path, start=start.tz_localize(None).isoformat(), end=end.timestamp())
    assert len(naive) == len(part)
    with pytest.raises(ConfigurationError, match="is not a time"):
        load(tmp_path, start="yesterday-ish")


def test_filters_are_pushed_down_to_row_groups(tmp_path, t0, monkeypatch):
    """A time filter reads only the row groups that can hold the window."""
    import wsreplay.store.segments as segments

    monkeypatch.setattr(segments, "ROW_GROUP_SIZE", 10)
    write_capture(tmp_path, fleet_rows(t0, outposts=1, hellos=100, step=60 * 10**9))
    pf = pq.ParquetFile(next(tmp_path.glob("*.parquet")))
    assert pf.metadata.num_row_groups > 10
    import pyarrow.dataset as ds

    dataset = ds.dataset(next(tmp_path.glob("*.parquet")), format="parquet")
    window = ds.field("ts") >= pa.scalar(t0 + 90 * 60 * 10**9, pa.timestamp("ns", tz="UTC"))
    fragments = list(next(iter(dataset.get_fragments())).split_by_row_group(window))
    assert 0 < len(fragments) < pf.metadata.num_row_groups / 2
    assert (
        len(load(tmp_path, start=pd.Timestamp(t0 + 90 * 60 * 10**9, tz="UTC"))) == 2 * 11 + 1
    )  # 11 HELLO+ACK pairs and the close


def test_single_file_and_save_round_trip(tmp_path, t0):
    write_capture(tmp_path / "cap", fleet_rows(t0))
    frames = load(tmp_path / "cap")
    out = save(frames, tmp_path / "copy")
    assert out.suffix == ".parquet"
    again = load(out)
    pd.testing.assert_frame_equal(frames, again)
    subset = save(frames[frames.endpoint == "client"][["ts", "endpoint", "payload"]], tmp_path / "sub.parquet")
    assert len(load(subset)) == 2


def test_crashed_stream_segment_is_read_up_to_last_whole_batch(tmp_path, t0):
    w = CaptureWriter(tmp_path, capture_id="cap", autoflush=False)
    rows = fleet_rows(t0)
    w.write_many(rows[:10])
    w.flush()
    w.write_many(rows[10:20])
    w.flush()
    seg = w.segment_path
    assert seg is not None
    data = seg.read_bytes()
    w._sink.close()  # simulate the process dying: no end-of-stream marker, no seal
    for cut in (len(data), len(data) - 7, len(data) - 300):
        seg.write_bytes(data[:cut])
        got = len(read_stream(seg))
        assert got in (10, 20)
        assert got == 20 or cut < len(data)
    seg.write_bytes(data[:5])  # cut inside the schema message: an empty segment
    assert len(read_stream(seg)) == 0
    seg.write_bytes(data[: len(data) - 7])
    report = recover(tmp_path)
    assert report.rows == 10 and len(report.sealed) == 1
    assert len(load(tmp_path)) == 10


def test_stream_whose_parquet_twin_exists_is_not_read_twice(tmp_path, t0):
    rows = fleet_rows(t0)
    write_capture(tmp_path, rows)
    parquet = next(tmp_path.glob("*.parquet"))
    twin = parquet.with_suffix(".arrows")
    with pa.OSFile(str(twin), "wb") as sink, pa.ipc.new_stream(sink, SCHEMA) as s:
        s.write_table(rows_to_table(rows))
    assert len(load(tmp_path)) == len(rows)
    report = recover(tmp_path)
    assert twin in report.removed and not twin.exists()


def test_refusals_are_one_clear_exception(tmp_path):
    with pytest.raises(CaptureNotFoundError, match="does not exist"):
        load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CaptureNotFoundError, match="no capture segments"):
        load(tmp_path / "empty")
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"a": [1]}), foreign)
    with pytest.raises(CaptureFormatError, match="not a wsreplay capture"):
        load(foreign)
    newer = tmp_path / "newer.parquet"
    pq.write_table(SCHEMA.empty_table().replace_schema_metadata({VERSION_KEY: b"99"}), newer)
    with pytest.raises(CaptureVersionError, match="upgrade wsreplay"):
        load(newer)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(CaptureFormatError, match="not a readable Parquet"):
        load(garbage)
    wrong = tmp_path / "wrong.parquet"
    table = SCHEMA.empty_table().set_column(0, "ts", pa.array([], pa.string()))
    write_parquet_raw = table.replace_schema_metadata({VERSION_KEY: b"1"})
    pq.write_table(write_parquet_raw, wrong)
    with pytest.raises(CaptureFormatError):
        load(wrong)
    with pytest.raises(CaptureFormatError, match="unknown capture column"):
        write_parquet(rows_to_table([]), tmp_path / "ok.parquet")
        load(tmp_path / "ok.parquet", columns=["nope"])
    stream = tmp_path / "junk.arrows"
    stream.write_bytes(b"\xff\xff\xff\xff" + b"\x10\x00\x00\x00" + b"junkjunkjunkjunk" * 4)
    with pytest.raises(CaptureFormatError):
        load(stream)


# ----------------------------------------------------------------- properties

texts = st.text(max_size=40)
maybe = lambda s: st.none() | s  # noqa: E731

event_strategy = st.fixed_dictionaries(
    {
        "ts": st.integers(min_value=0, max_value=4_000_000_000 * 10**9),
        "capture_id": texts,
        "conn_id": texts,
        "seq": st.integers(min_value=0, max_value=2**40),
        "endpoint": st.sampled_from(["outpost", "client", "other"]),
        "path": texts,
        "query": maybe(texts),
        "outpost_uuid": maybe(texts),
        "instance_uuid": maybe(texts),
        "event": st.sampled_from(["open", "message", "close", "error"]),
        "direction": maybe(st.sampled_from(["to_server", "to_peer"])),
        "opcode": maybe(st.sampled_from(["text", "binary"])),
        "payload": maybe(st.text(max_size=200)),
        "payload_bytes": maybe(st.binary(max_size=64)),
        "size": maybe(st.integers(min_value=0, max_value=2**40)),
        "instruction": maybe(st.integers(min_value=-(2**15), max_value=2**15 - 1)),
        "instruction_name": maybe(st.sampled_from(["ACK", "HELLO", "UNKNOWN"])),
        "version": maybe(texts),
        "level": maybe(texts),
        "message": maybe(st.text(max_size=100)),
        "close_code": maybe(st.integers(min_value=0, max_value=4999)),
        "close_reason": maybe(texts),
        "status": maybe(st.integers(min_value=100, max_value=599)),
        "parse_error": maybe(texts),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(event_strategy, max_size=30), split=st.integers(min_value=0, max_value=30))
def test_any_events_written_and_loaded_come_back_equal(tmp_path_factory, events, split):
    out = tmp_path_factory.mktemp("cap")
    events = sorted(events, key=lambda e: e["ts"])  # load returns time order
    with CaptureWriter(out, capture_id="p", autoflush=False) as w:
        w.write_many(events[:split])
        w.flush()
        w.write_many(events[split:])
    if not events:
        assert not list(out.glob("*.parquet"))
        return
    frames = load(out)
    table = pa.Table.from_pandas(frames, preserve_index=False)
    got = table.to_pylist()
    assert len(got) == len(events)
    for want, row in zip(events, got, strict=True):
        for key, value in want.items():
            have = row[key]
            if key == "ts":
                have = pd.Timestamp(have).value
            assert have == value, (key, have, value)


# ------------------------------------------------------------------ reading a capture while it grows


def test_loading_while_a_writer_rotates_never_fails_loses_or_duplicates(tmp_path, t0):
    """A writer rotating every few KiB (so the sealer keeps replacing streams) while a thread loads in a loop."""
    import threading

    writer = CaptureWriter(tmp_path, capture_id="cap", flush_interval=0.005, rotate_bytes=4096)
    done = threading.Event()
    problems: list[BaseException] = []
    seen: list[list[tuple[str, int]]] = []

    def read() -> None:
        previous: set[tuple[str, int]] = set()
        while not done.is_set():
            try:
                frames = load(tmp_path)
            except CaptureNotFoundError:
                continue  # nothing flushed yet
            except BaseException as exc:
                problems.append(exc)
                return
            keys = row_keys(frames)
            if not previous <= set(keys):  # everything an earlier load saw was on disk before this one began
                problems.append(AssertionError(f"{len(previous - set(keys))} row(s) seen before are missing"))
                return
            previous = set(keys)
            seen.append(keys)

    readers = [threading.Thread(target=read) for _ in range(2)]
    written = write_beside(writer, readers, done, t0=t0, rounds=400, size=2)
    assert not problems, repr(problems[0])
    final = row_keys(load(tmp_path))
    assert len(final) == written and len(set(final)) == written
    assert writer.stats.segments_sealed > 20  # the race was really run
    assert len(seen) > 5
    everything = set(final)
    for keys in seen:
        assert len(set(keys)) == len(keys), "a row was read twice"
        assert set(keys) <= everything
