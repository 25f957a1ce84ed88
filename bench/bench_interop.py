"""Interop benchmark: HAR export and import of a capture of N HELLO/ACK messages.

Figures (one run, same rows): ``import_har`` time against the floor every
importer pays -- building the same rows through ``ConnectionLog`` (which
decodes each frame) -- and ``export_har`` time against ``wsreplay.load`` of
the same capture. Rerun: ``.venv/bin/python -m bench.bench_interop [--messages N]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import wsreplay
from bench._report import write_section
from wsreplay.events import ConnectionLog
from wsreplay.protocol import encode_ack, encode_hello
from wsreplay.store import CaptureWriter

T0 = 1_795_838_763_000_000_000


def build_rows(messages: int, connections: int) -> list[dict]:
    """HELLO/ACK pairs 10 s apart on *connections* outpost connections, through ConnectionLog."""
    rows = []
    per = messages // (2 * connections)
    for c in range(connections):
        log = ConnectionLog("bench", f"/ws/outpost/pk-{c}/", f"instance_uuid=i{c}&attempt=0")
        rows.append(log.open(T0 + c, status=101, user_agent="goauthentik.io/outpost/2023.10.0"))
        hello = encode_hello({"uuid": f"i{c}", "version": "2023.10.0", "hostname": f"outpost-{c}"})
        for k in range(per):
            ts = T0 + k * 10_000_000_000 + c * 1_000
            rows.append(log.message(ts, "to_server", hello))
            rows.append(log.message(ts + 3_000_000, "to_peer", encode_ack()))
        rows.append(log.close(T0 + per * 10_000_000_000 + c, "to_server", code=1000))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--connections", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wsreplay-bench-interop-"))
    try:
        t = time.perf_counter()
        rows = build_rows(args.messages, args.connections)
        t_rows = time.perf_counter() - t
        with CaptureWriter(work / "cap", capture_id="bench", autoflush=False) as writer:
            writer.write_many(rows)

        t = time.perf_counter()
        frames = wsreplay.load(work / "cap")
        t_load = time.perf_counter() - t
        t = time.perf_counter()
        har = wsreplay.export_har(frames, work / "cap.har")
        t_export = time.perf_counter() - t
        t = time.perf_counter()
        imported = wsreplay.import_har(har, out=work / "again")
        t_import = time.perf_counter() - t
        assert len(imported) == len(frames) == len(rows)
        size = har.stat().st_size
    finally:
        shutil.rmtree(work, ignore_errors=True)

    body = f"""
Rerun: `.venv/bin/python -m bench.bench_interop --messages {args.messages} --connections {args.connections}`

{len(rows):,} rows ({args.messages:,} HELLO/ACK messages on {args.connections} outpost connections); the HAR
is {size / 1e6:.1f} MB ({size / len(rows):.0f} bytes per row).

| figure | value |
|---|---|
| `import_har(har, out=...)` / building the same rows with `ConnectionLog` | **{t_import / t_rows:.2f}x** |
| `export_har(frames, ...)` / `wsreplay.load` of the capture | {t_export / t_load:.1f}x |
| import throughput | {len(rows) / t_import / 1e3:.0f} k rows/s |

Every importer builds rows through `ConnectionLog` (which decodes each frame), so the first ratio
is the cost of reading the HAR (JSON, timestamps, base64) and writing the capture on top of that
floor.
"""
    write_section("Interop (HAR import/export)", body)
    print(body)


if __name__ == "__main__":
    main()
