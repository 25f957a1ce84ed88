"""``bucket_partitions``: a capture's rows by outpost bucket, compacted or not, the capture untouched."""

from __future__ import annotations

import pandas as pd
import pyarrow.dataset as ds
import pytest

import wsreplay
from wsreplay.schema import table_to_frames
from wsreplay.sim import Scenario, simulate_virtual
from wsreplay.store import compact
from wsreplay.store.buckets import NO_BUCKET, bucket_of
from wsreplay.store.partition import bucket_partitions, capture_rows, split_by_bucket

from .test_layout import plain

COLS = ["ts", "seq", "conn_id", "outpost_uuid", "endpoint", "instruction_name", "capture_id"]


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    sc = Scenario.generate(outposts=10, duration=60.0, interval=0.5, seed=4, browsers=2)
    path = tmp_path_factory.mktemp("part") / "cap"
    simulate_virtual(sc, out=path, save_truth=False, segment_rows=700)
    return path, wsreplay.load(path, columns=COLS)


def _check_groups(parts, before, chunk_rows):
    groups = parts.groups(chunk_rows)
    seen = []
    for group in groups:
        assert sum(parts.rows[b] for b in group) <= chunk_rows or len(group) == 1
        frames = table_to_frames(parts.table(group))
        pks = before["outpost_uuid"].dropna().unique().tolist()
        mine = [pk for pk, b in zip(pks, bucket_of(pks, parts.buckets), strict=True) if b in group]
        want = before[before["outpost_uuid"].isin(mine)]
        pd.testing.assert_frame_equal(plain(frames[COLS]), plain(want[COLS]))
        seen += group
    assert sorted(seen) == sorted(b for b in parts.rows if b != NO_BUCKET)
    client = table_to_frames(parts.table([NO_BUCKET], filter=ds.field("endpoint").isin(["client", "other"])))
    want = before[before["endpoint"].isin(["client", "other"])]
    pd.testing.assert_frame_equal(plain(client[COLS]), plain(want[COLS]))
    assert sum(parts.rows.values()) == len(before)


def test_an_uncompacted_capture_is_split_in_one_pass_and_left_untouched(capture):
    path, before = capture
    listing = sorted(p.name for p in path.iterdir())
    assert capture_rows(path) == len(before)
    with bucket_partitions(path, columns=COLS, chunk_rows=len(before) // 3) as parts:
        assert not parts.compacted and parts.buckets > 1
        scratch = next(iter(parts.spills.values())).parent
        _check_groups(parts, before, len(before) // 3)
    assert not scratch.exists()
    assert sorted(p.name for p in path.iterdir()) == listing


def test_a_compacted_capture_reads_its_buckets_files_and_splits_only_what_came_since(capture, tmp_path):
    path, before = capture
    compact(path, out=tmp_path / "packed", buckets=4)
    with bucket_partitions(tmp_path / "packed", columns=COLS, chunk_rows=len(before) // 2) as parts:
        assert parts.compacted and parts.buckets == 4 and not parts.spills
        _check_groups(parts, before, len(before) // 2)
    more = Scenario.generate(outposts=3, duration=20.0, interval=0.5, seed=8, start="2026-01-03")
    simulate_virtual(more, out=tmp_path / "more", save_truth=False)
    for f in (tmp_path / "more").glob("*.parquet"):
        f.rename(tmp_path / "packed" / f.name)
    both = wsreplay.load(tmp_path / "packed", columns=COLS)
    with bucket_partitions(tmp_path / "packed", columns=COLS, chunk_rows=len(both) // 2) as parts:
        assert parts.compacted and parts.spills  # the new segments, split; the buckets read as they are
        _check_groups(parts, both, len(both) // 2)


@pytest.mark.parametrize("n", [1, 7, 256, 70_000])
def test_split_by_bucket_keeps_each_buckets_rows_in_order(n):
    import pyarrow as pa

    pks = [f"pk-{i % 37}" if i % 11 else None for i in range(3000)]
    table = pa.table({"outpost_uuid": pa.array(pks).dictionary_encode(), "row": pa.array(range(3000))})
    got = list(split_by_bucket(table, n))
    buckets = bucket_of(pks, n)
    assert [k for k, _ in got] == sorted(set(buckets.tolist()))  # NO_BUCKET (-1) first, then ascending
    for k, part in got:
        assert part.column("row").to_pylist() == [i for i, b in enumerate(buckets) if b == k]
    assert got[0][0] == NO_BUCKET


def test_spilling_writes_every_row_once_and_an_error_in_the_writing_thread_reaches_the_caller(tmp_path):
    import threading

    import pyarrow as pa

    from wsreplay.store.partition import spill_buckets

    schema = pa.schema([("outpost_uuid", pa.dictionary(pa.int32(), pa.string())), ("seq", pa.int64())])

    def table(uuids: list[str], start: int) -> pa.Table:
        seq = pa.array(range(start, start + len(uuids)), pa.int64())
        return pa.table({"outpost_uuid": pa.array(uuids).dictionary_encode(), "seq": seq}, schema=schema)

    uuids = [f"{k:08x}-0000-4000-8000-000000000000" for k in range(20)]
    tables = [table(uuids, 0), table(uuids[::-1], 20), table([], 40), table(uuids[:5], 40)]
    paths, rows = spill_buckets(tables, tmp_path, 4, schema)
    assert sum(rows.values()) == 45
    seqs = sorted(s for p in paths.values() for s in pa.ipc.open_stream(str(p)).read_all().column("seq").to_pylist())
    assert seqs == list(range(45))
    # a table the files' schema cannot take: the write fails in the thread, the caller gets the error,
    # and no writing thread is left behind
    bad = pa.table({"outpost_uuid": pa.array(["x"]).dictionary_encode(), "seq": pa.array(["not a number"])})
    (tmp_path / "bad").mkdir()
    with pytest.raises(pa.ArrowInvalid):
        spill_buckets([table(uuids, 0), bad], tmp_path / "bad", 4, schema)
    assert not [t for t in threading.enumerate() if t.name.startswith("wsreplay-split-write")]
