"""The segment writer: flushing, rotation, sealing, disk errors, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow.parquet as pq
import pytest

from wsreplay import CaptureWriter, ConnectionLog, load, recover
from wsreplay.exceptions import CaptureError
from wsreplay.protocol import encode_ack, encode_hello, hello_args
from wsreplay.schema import VERSION_KEY


def hello_ack_rows(log: ConnectionLog, t0: int, n: int) -> list[dict]:
    rows = [log.open(t0, user_agent="goauthentik.io/outpost/2023.10.0")]
    hello = encode_hello(hello_args(uuid="inst-1", version="2023.10.0"))
    for i in range(n):
        rows.append(log.message(t0 + (i + 1) * 10**9, "to_server", hello))
        rows.append(log.message(t0 + (i + 1) * 10**9 + 3_000_000, "to_peer", encode_ack()))
    return rows


def test_close_seals_zstd_parquet_with_version(tmp_path, t0):
    log = ConnectionLog("cap", "/ws/outpost/pk/?instance_uuid=inst-1&attempt=0")
    with CaptureWriter(tmp_path, capture_id="cap", autoflush=False) as w:
        w.write_many(hello_ack_rows(log, t0, 10))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["cap-00000.parquet"]
    meta = pq.ParquetFile(tmp_path / files[0]).metadata
    assert meta.metadata[VERSION_KEY] == b"1"
    assert meta.row_group(0).column(0).compression == "ZSTD"
    frames = load(tmp_path)
    assert len(frames) == 21
    assert frames["seq"].tolist() == list(range(21))
    assert set(frames["instance_uuid"].astype(str)) == {"inst-1"}


def test_autoflush_makes_rows_readable_while_recording(tmp_path, t0):
    log = ConnectionLog("cap", "/ws/client/")
    w = CaptureWriter(tmp_path, capture_id="cap", flush_interval=0.05)
    try:
        w.write(log.open(t0))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and w.stats.rows_written == 0:
            time.sleep(0.01)
        assert [p.suffix for p in tmp_path.iterdir()] == [".arrows"]
        assert len(load(tmp_path)) == 1
    finally:
        w.close()


def test_rotation_by_size(tmp_path, t0):
    log = ConnectionLog("cap", "/ws/outpost/pk/")
    with CaptureWriter(tmp_path, capture_id="cap", autoflush=False, rotate_bytes=1) as w:
        for row in hello_ack_rows(log, t0, 3):
            w.write(row)
            w.flush()
    parquet = sorted(tmp_path.glob("*.parquet"))
    assert len(parquet) == 7
    assert len(load(tmp_path)) == 7


def test_new_writer_does_not_overwrite_segments_of_same_capture(tmp_path, t0):
    log = ConnectionLog("cap", "/ws/client/")
    for _ in range(2):
        with CaptureWriter(tmp_path, capture_id="cap", autoflush=False) as w:
            w.write(log.open(t0))
    assert len(list(tmp_path.glob("cap-*.parquet"))) == 2
    assert len(load(tmp_path)) == 2


def test_closed_writer_refuses_writes(tmp_path, t0):
    w = CaptureWriter(tmp_path, autoflush=False)
    w.close()
    with pytest.raises(CaptureError, match="closed"):
        w.write({"ts": t0})


def test_unwritable_directory_is_one_clear_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(CaptureError, match="cannot create capture directory"):
        CaptureWriter(target / "sub")


def test_disk_refusal_keeps_rows_and_writes_later(tmp_path, t0):
    """A full disk is simulated with RLIMIT_FSIZE in a child process (no root needed)."""
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        from wsreplay import CaptureWriter, ConnectionLog
        errors = []
        w = CaptureWriter({str(tmp_path)!r}, capture_id="cap", autoflush=False, on_error=errors.append)
        log = ConnectionLog("cap", "/ws/client/")
        w.write(log.open({t0}))
        assert w.flush()
        resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
        for i in range(50):
            w.write(log.message({t0} + i, "to_peer", "x" * 1000))
        ok = w.flush()
        assert not ok and errors and w.stats.rows_pending == 50, (ok, errors, w.stats.as_dict())
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        assert w.flush(), w.stats.last_error
        w.close()
        print("ok", w.stats.write_errors)
        """
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[0] == "ok"
    frames = load(tmp_path)
    assert len(frames) == 51
    assert frames["seq"].tolist() == list(range(51))


WRITER_SCRIPT = """
import sys, time
from wsreplay import CaptureWriter, ConnectionLog
out, flush = sys.argv[1], float(sys.argv[2])
w = CaptureWriter(out, capture_id="crash", flush_interval=flush)
log = ConnectionLog("crash", "/ws/outpost/pk/")
i = 0
while True:
    now = time.time_ns()
    w.write(log.message(now, "to_server", '{"instruction":1,"args":{"n":%d}}' % i))
    print(i, now, flush=True)
    i += 1
    time.sleep(0.002)
"""


@pytest.mark.parametrize("run_for", [0.35, 0.8])
def test_sigkill_loses_only_the_last_flush_interval(tmp_path, run_for):
    flush = 0.1
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT, str(tmp_path), str(flush)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the writer is up and writing
    time.sleep(run_for)
    killed_at = time.time_ns()
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=10)
    sent = [tuple(map(int, line.split())) for line in (first + out).splitlines() if line.strip()]
    frames = load(tmp_path)  # reads the crashed .arrows segment directly
    got = set(frames["payload"].astype(str))
    older = [i for i, ts in sent if killed_at - ts > flush * 1e9]
    missing = [i for i in older if f'{{"instruction":1,"args":{{"n":{i}}}}}' not in got]
    assert older and not missing
    # recover seals the leftovers into Parquet with the same rows
    report = recover(tmp_path)
    assert report.rows == len(frames) and not list(tmp_path.glob("*.arrows"))
    assert len(load(tmp_path)) == len(frames)
    assert all(os.path.getsize(p) > 0 for p in tmp_path.iterdir())


def test_stats_count_every_byte_written_and_say_while_writes_fail(tmp_path, t0):
    """``bytes_total`` (a counter across segments) and ``failing`` feed the recorder's live metrics."""
    script = textwrap.dedent(
        f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        from wsreplay import CaptureWriter, ConnectionLog
        w = CaptureWriter({str(tmp_path)!r}, capture_id="cap", autoflush=False, rotate_bytes=4000)
        log = ConnectionLog("cap", "/ws/client/")
        w.write(log.open({t0}))
        totals, segments = [], []
        for i in range(12):
            w.write_many(log.message({t0} + i, "to_peer", "x" * 300) for _ in range(3))
            assert w.flush() and not w.stats.failing
            totals.append(w.stats.bytes_total)
            segments.append(w.stats.bytes_written)
        assert totals == sorted(totals) and len(set(totals)) == 12, totals
        assert totals[-1] > max(segments), (totals, segments)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
        w.write(log.message({t0} + 99, "to_peer", "x" * 1000))
        assert not w.flush() and w.stats.failing
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        assert w.flush() and not w.stats.failing
        assert w.stats.bytes_total > totals[-1]
        w.close()  # sealing runs beside the flushes (here in child processes: no pyarrow loaded)
        assert w.stats.segments_sealed >= 2, w.stats.segments_sealed
        print("ok")
        """
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["ok"]


def test_a_child_process_seals_the_same_parquet_as_a_thread(tmp_path, t0):
    log = ConnectionLog("cap", "/ws/outpost/pk/?instance_uuid=inst-1&attempt=0")
    rows = hello_ack_rows(log, t0, 50)
    for seal in ("thread", "process"):
        with CaptureWriter(tmp_path / seal, capture_id="cap", autoflush=False, seal=seal) as w:
            w.write_many(rows[:40])
            assert w.flush()
            w.write_many(rows[40:])
        assert [p.name for p in (tmp_path / seal).iterdir()] == ["cap-00000.parquet"]
    thread, process = (pq.read_table(tmp_path / s / "cap-00000.parquet") for s in ("thread", "process"))
    assert process.equals(thread) and process.schema.metadata == thread.schema.metadata


def test_seal_must_be_a_known_place(tmp_path):
    with pytest.raises(ValueError, match="seal must be"):
        CaptureWriter(tmp_path, seal="elsewhere")  # type: ignore[arg-type]


def test_a_seal_that_fails_in_the_child_keeps_the_stream_and_says_why(tmp_path, t0):
    # The file size limit is inherited by the sealing child: it cannot write the Parquet file.
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        from wsreplay import CaptureWriter, ConnectionLog
        w = CaptureWriter({str(tmp_path)!r}, capture_id="cap", autoflush=False, seal="process")
        log = ConnectionLog("cap", "/ws/client/")
        w.write(log.open({t0}))
        w.write_many(log.message({t0} + i, "to_peer", "x" * 300) for i in range(20))
        assert w.flush()
        resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
        w.close()
        print(w.stats.write_errors, "pyarrow" in sys.modules)
        print(w.stats.last_error)
        """
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    errors, loaded, last = res.stdout.split(maxsplit=2)
    assert int(errors) >= 1 and loaded == "False"
    assert "sealing cap-00000.arrows failed" in last and "\n" not in last.strip()
    assert [p.suffix for p in tmp_path.iterdir() if not p.name.startswith(".")] == [".arrows"]
    assert len(load(tmp_path)) == 21  # the stream holds every row; recover (or load) reads it
