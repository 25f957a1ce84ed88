"""Captures are plain Parquet: DuckDB SQL gets the same counts as ``wsreplay.load``."""

from __future__ import annotations

from pathlib import Path

import pytest
from interop_support import PK, sample_rows

import wsreplay
from wsreplay.events import ConnectionLog
from wsreplay.protocol import encode_ack, encode_hello
from wsreplay.store import CaptureWriter

duckdb = pytest.importorskip("duckdb")


def _multi_segment_capture(out: Path) -> Path:
    """Two recording runs in one directory, one of them rotated into several segments."""
    with CaptureWriter(out, capture_id="run-a", autoflush=False) as writer:
        writer.write_many(sample_rows())
    t0 = 1_795_900_000_000_000_000
    with CaptureWriter(out, capture_id="run-b", autoflush=False) as writer:
        for n in range(3):
            log = ConnectionLog("run-b", f"/ws/outpost/{PK}/", f"instance_uuid=i{n}&attempt=0")
            writer.write(log.open(t0 + n, status=101, user_agent="goauthentik.io/outpost/2023.10.0"))
            for k in range(50):
                ts = t0 + (k + 1) * 10_000_000_000 + n
                writer.write(log.message(ts, "to_server", encode_hello({"uuid": f"i{n}", "version": "2023.10.0"})))
                writer.write(log.message(ts + 3_000_000, "to_peer", encode_ack()))
            writer.rotate()  # one sealed segment per connection
    return out


def test_duckdb_sql_counts_match_wsreplay_load(tmp_path: Path):
    capture = _multi_segment_capture(tmp_path / "capture")
    assert len(list(capture.glob("*.parquet"))) >= 3
    frames = wsreplay.load(capture)
    glob = str(capture / "*.parquet")

    con = duckdb.connect()
    total = con.execute("SELECT count(*) FROM read_parquet(?)", [glob]).fetchone()[0]
    assert total == len(frames)

    by_event = dict(con.execute("SELECT event, count(*) FROM read_parquet(?) GROUP BY event", [glob]).fetchall())
    assert by_event == frames.groupby("event", observed=True).size().to_dict()

    hellos = con.execute(
        "SELECT outpost_uuid, instance_uuid, count(*) AS n FROM read_parquet(?) "
        "WHERE instruction_name = 'HELLO' GROUP BY ALL ORDER BY ALL",
        [glob],
    ).fetchall()
    expected = (
        frames[frames["instruction_name"] == "HELLO"].groupby(["outpost_uuid", "instance_uuid"], observed=True).size()
    )
    assert hellos == sorted((o, i, n) for (o, i), n in expected.items())
    assert len(hellos) == 4

    # timestamps keep their nanoseconds and their zone; the time filter agrees with load(start=, end=)
    start, end = "2026-11-28T04:06:13Z", "2026-11-28T04:06:40Z"
    window = con.execute(
        "SELECT count(*) FROM read_parquet(?) WHERE ts >= ?::TIMESTAMPTZ AND ts < ?::TIMESTAMPTZ",
        [glob, start, end],
    ).fetchone()[0]
    assert window == len(wsreplay.load(capture, start=start, end=end)) > 0

    # the format version every file carries, readable without wsreplay
    versions = con.execute(
        "SELECT DISTINCT decode(value) FROM parquet_kv_metadata(?) WHERE decode(key) = 'wsreplay.format_version'",
        [glob],
    ).fetchall()
    assert versions == [(str(wsreplay.FORMAT_VERSION),)]


def test_duckdb_reads_an_imported_har_capture(sample_capture: Path, tmp_path: Path):
    har = wsreplay.export_har(sample_capture, tmp_path / "x.har")
    wsreplay.import_har(har, out=tmp_path / "imported")
    con = duckdb.connect()
    rows = con.execute(
        "SELECT direction, count(*) FROM read_parquet(?) WHERE event = 'message' GROUP BY 1 ORDER BY 1",
        [str(tmp_path / "imported" / "*.parquet")],
    ).fetchall()
    frames = wsreplay.load(tmp_path / "imported")
    expected = frames[frames["event"] == "message"].groupby("direction", observed=True).size()
    assert rows == sorted(expected.items()) == [("to_peer", 7), ("to_server", 6)]
