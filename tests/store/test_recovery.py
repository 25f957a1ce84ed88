"""recover(): sealing what a crashed recorder left, never touching what a live writer holds."""

from __future__ import annotations

from store_support import fleet_rows, row_keys, write_beside

from wsreplay import CaptureWriter, load, recover


def test_recover_leaves_what_a_live_writer_holds_alone(tmp_path, t0, monkeypatch):
    """A segment being sealed (its .parquet.tmp written, not yet renamed) and the segment being written."""
    import threading

    import wsreplay.store.segments as segments

    reached, go = threading.Event(), threading.Event()
    commit = segments._commit

    def slow_commit(*args):
        reached.set()
        assert go.wait(30)
        commit(*args)

    monkeypatch.setattr(segments, "_commit", slow_commit)
    writer = CaptureWriter(tmp_path, capture_id="cap", autoflush=False, rotate_bytes=1)
    rows = fleet_rows(t0)
    writer.write_many(rows[:10])
    writer.flush()  # past rotate_bytes: the background sealer takes cap-00000
    assert reached.wait(30)  # it has written cap-00000.parquet.tmp and holds it
    writer.rotate_bytes = 1 << 30
    writer.write_many(rows[10:])
    writer.flush()  # cap-00001.arrows: the live segment
    sealing, tmp, live = (tmp_path / name for name in ("cap-00000.arrows", "cap-00000.parquet.tmp", "cap-00001.arrows"))
    report = recover(tmp_path)
    assert sorted(report.busy) == sorted([sealing, tmp, live])
    assert not report.sealed and not report.removed and "skipped 3 file(s)" in str(report)
    assert sealing.exists() and tmp.exists() and live.exists()
    go.set()
    writer.close()
    assert writer.stats.write_errors == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cap-00000.parquet", "cap-00001.parquet"]
    assert len(load(tmp_path)) == len(rows)


def test_recover_in_a_loop_beside_a_rotating_writer(tmp_path, t0):
    import threading

    writer = CaptureWriter(tmp_path, capture_id="cap", flush_interval=0.005, rotate_bytes=16 * 1024)
    done = threading.Event()
    problems: list[BaseException] = []

    def recover_loop() -> None:
        while not done.is_set():
            try:
                report = recover(tmp_path)
            except BaseException as exc:  # the test reports whatever escaped
                problems.append(exc)
                return
            if report.sealed or report.removed:
                problems.append(AssertionError(f"recover touched a live writer's files: {report}"))
                return

    written = write_beside(writer, [threading.Thread(target=recover_loop)], done, t0=t0, rounds=300, size=3)
    assert not problems, repr(problems[0])
    assert writer.stats.write_errors == 0 and writer.stats.segments_sealed > 10
    final = row_keys(load(tmp_path))
    assert len(final) == written and len(set(final)) == written
