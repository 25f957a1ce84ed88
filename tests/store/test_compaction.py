"""``compact``: sealed segments into outpost buckets, crash-safe, readable by pyarrow and DuckDB."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import wsreplay
from wsreplay import CaptureWriter, ConnectionLog
from wsreplay.exceptions import CaptureFormatError, CaptureNotFoundError, ConfigurationError
from wsreplay.protocol import encode_hello, hello_args
from wsreplay.sim import Scenario, simulate_virtual
from wsreplay.store import bucket_files, compact
from wsreplay.store.compaction import choose_buckets
from wsreplay.store.layout import layout_of

from .test_layout import plain


def make_fleet(path, *, outposts=10, duration=60.0, segment_rows=500, seed=3):
    sc = Scenario.generate(outposts=outposts, duration=duration, interval=0.5, seed=seed, browsers=1)
    simulate_virtual(sc, out=path, save_truth=False, segment_rows=segment_rows)
    return wsreplay.load(path)


def test_choose_buckets_follows_the_fleet_size():
    assert [choose_buckets(n) for n in (0, 1, 8, 9, 100, 1000, 10_000)] == [1, 1, 1, 2, 16, 128, 256]


def test_pyarrow_dataset_and_duckdb_read_the_hive_layout(tmp_path):
    before = make_fleet(tmp_path / "cap")
    compact(tmp_path / "cap", buckets=3)
    _, files = bucket_files(tmp_path / "cap")
    dataset = ds.dataset(tmp_path / "cap", format="parquet", partitioning="hive")
    table = dataset.to_table(columns=["conn_id", "seq", "outpost_uuid", "bucket"])
    assert table.num_rows == len(before)
    per_bucket = table.group_by("bucket").aggregate([("seq", "count")]).to_pydict()
    want = {b: sum(pq.read_metadata(f).num_rows for f in fs) for b, fs in files.items()}
    assert dict(zip(per_bucket["bucket"], per_bucket["seq_count"], strict=True)) == want
    con = duckdb.connect()
    glob = str(tmp_path / "cap" / "*" / "*.parquet")
    rows = con.execute(
        f"SELECT bucket, count(*), count(DISTINCT outpost_uuid) FROM read_parquet('{glob}', hive_partitioning=true) "
        "GROUP BY bucket ORDER BY bucket"
    ).fetchall()
    assert {b: c for b, c, _ in rows} == want
    hellos = con.execute(
        f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning=true) WHERE instruction_name = 'HELLO'"
    ).fetchone()[0]
    assert hellos == int((before["instruction_name"] == "HELLO").sum())
    frames = pd.read_parquet(tmp_path / "cap", columns=["ts", "bucket"])  # pandas reads the hive layout too
    assert len(frames) == len(before) and set(frames["bucket"].astype(int)) == set(files)


def test_compacted_files_group_connections_within_each_day_and_carry_the_window(tmp_path):
    before = make_fleet(tmp_path / "cap", duration=30.0)
    compact(tmp_path / "cap", buckets=2)
    _, files = bucket_files(tmp_path / "cap")
    for fs in files.values():
        for f in fs:
            t = pq.read_table(f, columns=["outpost_uuid", "conn_id", "ts", "seq"]).to_pandas()
            key = t.astype({"outpost_uuid": object, "conn_id": object}).fillna({"outpost_uuid": ""})
            assert key.equals(key.sort_values(["outpost_uuid", "conn_id", "ts", "seq"], ignore_index=True))
    lay = layout_of(tmp_path / "cap")
    assert lay is not None and lay.window == (before["ts"].min().value, before["ts"].max().value)


def _writer_with_live_stream(path, t0):
    w = CaptureWriter(path, capture_id="live", autoflush=False)
    log = ConnectionLog("live", "/ws/outpost/pk/?instance_uuid=i1")
    w.write(log.open(t0))
    w.write(log.message(t0 + 10**9, "to_server", encode_hello(hello_args(uuid="i1", version="2024.2.1"))))
    w.flush()
    return w


def test_a_live_stream_is_left_alone_and_listed(tmp_path, t0):
    before = make_fleet(tmp_path / "cap", duration=20.0)
    w = _writer_with_live_stream(tmp_path / "cap", t0)
    try:
        rep = compact(tmp_path / "cap")
        assert any(name.endswith(".arrows") and "being recorded" in why for name, why in rep.skipped)
        assert "skipped" in str(rep) and rep.rows == len(before)
        assert len(wsreplay.load(tmp_path / "cap")) == len(before) + 2
    finally:
        w.close()
    rep = compact(tmp_path / "cap")  # the stream is sealed now
    assert rep.rows == 2 and not rep.skipped
    assert len(wsreplay.load(tmp_path / "cap")) == len(before) + 2


def test_out_leaves_the_capture_alone(tmp_path):
    before = make_fleet(tmp_path / "cap", duration=20.0)
    names = sorted(p.name for p in (tmp_path / "cap").iterdir())
    compact(tmp_path / "cap", out=tmp_path / "packed")
    assert sorted(p.name for p in (tmp_path / "cap").iterdir()) == names
    pd.testing.assert_frame_equal(plain(wsreplay.load(tmp_path / "packed")), plain(before))


def test_bad_input_is_one_line(tmp_path):
    with pytest.raises(CaptureNotFoundError, match="does not exist"):
        compact(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CaptureNotFoundError, match="no sealed capture segments"):
        compact(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(CaptureFormatError, match="is not a readable Parquet file") as err:
        compact(tmp_path / "junk")
    assert "\n" not in str(err.value)
    make_fleet(tmp_path / "cap", duration=10.0)
    with pytest.raises(CaptureFormatError, match="takes a capture directory"):
        compact(next((tmp_path / "cap").glob("*.parquet")))
    compact(tmp_path / "cap", buckets=2)
    with pytest.raises(ConfigurationError, match="compacted into 2 buckets"):
        compact(tmp_path / "cap", buckets=3)
    with pytest.raises(ConfigurationError, match="at least 1"):
        compact(tmp_path / "cap", buckets=0)
    with pytest.raises(ConfigurationError, match="not an empty directory"):
        compact(tmp_path / "cap", out=tmp_path / "cap")


_KILLABLE = "import sys; from wsreplay.store import compact; compact(sys.argv[1])"


def _run(path):
    return subprocess.Popen([sys.executable, "-c", _KILLABLE, str(path)], stdout=subprocess.DEVNULL)


def test_sigkill_at_any_moment_loses_no_row_and_reads_none_twice(tmp_path):
    before = plain(make_fleet(tmp_path / "ref", outposts=12, duration=240.0, segment_rows=300, seed=11))
    t = time.monotonic()
    assert _run(tmp_path / "ref").wait() == 0
    whole = time.monotonic() - t
    rng = random.Random(13)
    states: set[str] = set()
    for i in range(10):
        cap = tmp_path / f"cap{i}"
        make_fleet(cap, outposts=12, duration=240.0, segment_rows=300, seed=11)
        proc = _run(cap)
        time.sleep(rng.uniform(0.2, 1.1) * whole)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        states.add(_state(cap))
        pd.testing.assert_frame_equal(plain(wsreplay.load(cap)), before)
        compact(cap)  # finishes (or redoes) the job and removes what the killed one left
        pd.testing.assert_frame_equal(plain(wsreplay.load(cap)), before)
        assert not [p for p in cap.iterdir() if p.name.startswith(".compact-")]
    print(sorted(states))
    assert len(states) >= 2  # the kills hit different phases, not all before or all after the work


def _state(cap) -> str:
    """Where a killed compaction stopped: staging only, renaming, removing the segments, or done."""
    names = {p.name for p in cap.iterdir()}
    segments = any(n.endswith(".parquet") and not n.startswith("_") for n in names)
    buckets = any(n.startswith("bucket=") for n in names)
    staging = any(n.startswith(".compact-") for n in names)
    return f"segments={segments} buckets={buckets} staging={staging}"


def test_a_crash_between_renaming_and_removing_reads_each_row_once(tmp_path):
    # the two states a kill rarely hits: (a) every file renamed, segments not yet removed;
    # (b) some files renamed, others still staged (a run that is not complete is ignored)
    before = plain(make_fleet(tmp_path / "cap", duration=30.0))
    saved = {p.name: p.read_bytes() for p in (tmp_path / "cap").glob("*.parquet")}
    compact(tmp_path / "cap", buckets=3)
    for name, data in saved.items():
        (tmp_path / "cap" / name).write_bytes(data)
    pd.testing.assert_frame_equal(plain(wsreplay.load(tmp_path / "cap")), before)  # (a)
    _, files = bucket_files(tmp_path / "cap")
    next(iter(files.values()))[0].unlink()
    pd.testing.assert_frame_equal(plain(wsreplay.load(tmp_path / "cap")), before)  # (b)
    rep = compact(tmp_path / "cap")
    assert rep.cleaned and rep.rows == len(before)
    pd.testing.assert_frame_equal(plain(wsreplay.load(tmp_path / "cap")), before)
