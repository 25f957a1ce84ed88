"""The compacted layout's contract: ``bucket_files``, ``load(outpost=...)`` reading only its buckets, same frames."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wsreplay
from wsreplay.exceptions import CaptureVersionError
from wsreplay.sim import Scenario, simulate_virtual
from wsreplay.store import bucket_files, compact
from wsreplay.store.buckets import NO_BUCKET, bucket_of
from wsreplay.store.layout import MANIFEST_NAME, layout_of
from wsreplay.store.span import capture_span


def plain(frames: pd.DataFrame) -> pd.DataFrame:
    """Frames with categoricals as objects (category order follows the files read) and ties broken by conn_id."""
    out = frames.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype(object)
    return out.sort_values(["ts", "seq", "conn_id"], kind="stable", ignore_index=True)


def sorted_by_ts_then_seq(frames: pd.DataFrame) -> bool:
    key = list(zip(frames["ts"].astype("int64"), frames["seq"].fillna(-1).astype("int64"), strict=True))
    return key == sorted(key)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    sc = Scenario.generate(outposts=12, duration=120.0, interval=0.5, seed=5, browsers=2)
    path = tmp_path_factory.mktemp("fleet") / "cap"
    simulate_virtual(sc, out=path, save_truth=False, segment_rows=1500)
    before = wsreplay.load(path)
    span = capture_span(path)
    compact(path, buckets=4)
    return path, before, span


def test_bucket_files_names_every_bucket_and_none_for_an_uncompacted_capture(fleet, tmp_path):
    path, before, _ = fleet
    n, files = bucket_files(path)
    assert n == 4
    pks = before["outpost_uuid"].dropna().unique().tolist()
    assert set(files) == {int(b) for b in bucket_of(pks, n)} | {NO_BUCKET}
    for b, fs in files.items():
        got = pq.read_table(fs, columns=["outpost_uuid"]).column(0).to_pylist()
        assert set(bucket_of(got, n).tolist()) == {b}
    assert not list(path.glob("*-*.parquet"))  # the segments are gone
    simulate_virtual(Scenario.generate(outposts=2, duration=5.0, seed=1), out=tmp_path / "c", save_truth=False)
    assert bucket_files(tmp_path / "c") is None


def test_load_returns_the_same_frames_sorted_by_ts_then_seq(fleet):
    path, before, span = fleet
    after = wsreplay.load(path)
    assert sorted_by_ts_then_seq(after)
    pd.testing.assert_frame_equal(plain(before), plain(after))
    assert capture_span(path) == span


def test_load_of_some_outposts_reads_only_their_buckets(fleet, monkeypatch):
    path, before, _ = fleet
    pk = before["outpost_uuid"].dropna().iloc[0]
    n, files = bucket_files(path)
    read: list[str] = []
    import wsreplay.store.reader as reader

    real = reader._read_segments

    def spy(segs, files, *args):
        read.extend(str(f) for f in files)
        return real(segs, files, *args)

    monkeypatch.setattr(reader, "_read_segments", spy)
    one = wsreplay.load(path, outpost=[pk])
    mine = {str(f) for f in files[int(bucket_of([pk], n)[0])]}
    assert set(read) == mine
    pd.testing.assert_frame_equal(plain(one), plain(before[before["outpost_uuid"] == pk]))


def test_segments_sealed_after_compaction_are_read_and_compacted_next_time(fleet, tmp_path):
    path, before, _ = fleet
    extra = Scenario.generate(outposts=3, duration=30.0, interval=0.5, seed=9, start="2026-01-02")
    simulate_virtual(extra, out=tmp_path / "more", save_truth=False)
    for f in (tmp_path / "more").glob("*.parquet"):
        f.rename(path / f.name)
    both = wsreplay.load(path)
    assert len(both) > len(before)
    assert capture_span(path)[1] == both["ts"].max()
    rep = compact(path)
    assert rep.rows == len(both) - len(before) and rep.buckets == 4
    pd.testing.assert_frame_equal(plain(wsreplay.load(path)), plain(both))


def test_an_older_wsreplay_refuses_a_compacted_capture(fleet, monkeypatch):
    # an older wsreplay reads the top-level *.parquet files only and knows version 1 only: it meets the
    # manifest first and stops with its "upgrade wsreplay" message instead of reading a part of the rows
    path, _, _ = fleet
    import wsreplay.store.segments as segments

    top = sorted(p.name for p in path.glob("*.parquet"))
    assert top == [MANIFEST_NAME] and layout_of(path) is not None
    monkeypatch.setattr(segments, "SUPPORTED_VERSIONS", frozenset({1}))
    with pytest.raises(CaptureVersionError, match="upgrade wsreplay"):
        segments.check_version(pq.read_schema(path / MANIFEST_NAME).metadata, path / MANIFEST_NAME)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    outposts=st.integers(1, 9),
    buckets=st.one_of(st.none(), st.integers(1, 5)),
    segment_rows=st.integers(50, 2000),
)
def test_compacted_load_equals_uncompacted_for_random_fleets(tmp_path_factory, seed, outposts, buckets, segment_rows):
    sc = Scenario.generate(outposts=outposts, duration=30.0, interval=0.2, seed=seed, browsers=1, fault_every=40.0)
    path = tmp_path_factory.mktemp("fleet") / "cap"
    simulate_virtual(sc, out=path, save_truth=False, segment_rows=segment_rows)
    before = wsreplay.load(path)
    pks = before["outpost_uuid"].dropna().unique().tolist()
    some = {pk: before[before["outpost_uuid"] == pk] for pk in pks[:2]}
    compact(path, buckets=buckets)
    after = wsreplay.load(path)
    assert sorted_by_ts_then_seq(after)
    pd.testing.assert_frame_equal(plain(before), plain(after))
    for pk, frames in some.items():
        pd.testing.assert_frame_equal(plain(wsreplay.load(path, outpost=[pk])), plain(frames))
    client = wsreplay.load(path, endpoint="client")
    pd.testing.assert_frame_equal(plain(client), plain(before[before["endpoint"] == "client"]))
