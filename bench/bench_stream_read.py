"""Reading stream segments: what full validation and reading past damage cost.

Every batch of an ``.arrows`` stream segment is now validated in full before
it is used (damaged bytes can decode into batches that lie), and a damaged
batch in the middle is stepped over instead of ending the read. Figures, all
on one stream of N HELLO/ACK rows written in 10,000-row zstd batches, in the
same run: ``read_stream`` (what ``load`` and sealing use) against the same
read without validation (``read_stream`` as it was before); the same stream
with one damaged batch in the middle against the intact one; ``seal_stream``
against ``read_stream``. Rerun: ``.venv/bin/python -m bench.bench_stream_read [--rows N]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import warnings
from pathlib import Path

import pyarrow as pa

from bench._report import write_section
from bench.bench_store import hello_ack_table, timed
from wsreplay.exceptions import CaptureDamageWarning
from wsreplay.schema import SCHEMA, conform_table
from wsreplay.store.segments import STREAM_OPTIONS, read_stream, seal_stream

BATCH = 10_000


def write_stream(path: Path, table: pa.Table) -> list[tuple[int, int]]:
    """Write *table* as a stream of BATCH-row batches; return each batch message's byte range."""
    spans = []
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, SCHEMA, options=STREAM_OPTIONS) as writer:
        for start in range(0, table.num_rows, BATCH):
            begin = sink.tell()
            writer.write_table(table.slice(start, BATCH))
            spans.append((begin, sink.tell()))
    return spans


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wsreplay-bench-stream-"))
    try:
        table = hello_ack_table(args.rows).cast(SCHEMA)
        intact = tmp / "intact.arrows"
        spans = write_stream(intact, table)
        damaged = tmp / "damaged.arrows"
        data = bytearray(intact.read_bytes())
        begin, end = spans[len(spans) // 2]
        middle = (begin + end) // 2
        data[middle : middle + 64] = b"\x13" * 64
        damaged.write_bytes(bytes(data))

        def unvalidated() -> None:  # read_stream as it was before: no validation, stop at the first bad batch
            with pa.OSFile(str(intact), "rb") as fh:
                tables = [pa.Table.from_batches([b]) for b in pa.ipc.open_stream(fh)]
            conform_table(pa.concat_tables(tables))

        def ours() -> None:
            read_stream(intact)

        def ours_damaged() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CaptureDamageWarning)
                read_stream(damaged)

        def seal() -> None:
            seal_stream(intact, tmp / "sealed.parquet")

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CaptureDamageWarning)
            kept = read_stream(damaged).num_rows
        unvalidated()  # warm the page cache before anything is timed
        times: dict[str, list[float]] = {"bare": [], "ours": [], "damaged": []}
        for _ in range(5):  # interleaved, so load changes on the shared machine hit all three alike
            times["bare"].append(timed(unvalidated, repeat=1))
            times["ours"].append(timed(ours, repeat=1))
            times["damaged"].append(timed(ours_damaged, repeat=1))
        t_bare, t_ours, t_damaged = (statistics.median(times[k]) for k in ("bare", "ours", "damaged"))
        t_seal = timed(seal)
        mib = intact.stat().st_size / 2**20
        body = f"""Rerun: `.venv/bin/python -m bench.bench_stream_read --rows {args.rows}`

One stream segment of {args.rows:,} HELLO/ACK rows ({mib:.1f} MiB, {len(spans)} zstd batches of
{BATCH:,} rows); the damaged copy has 64 bytes overwritten in the middle of batch {len(spans) // 2}.
Medians of 5 interleaved runs; the machine is shared (2 cores, other jobs running): compare ratios.

| figure | value |
|---|---|
| `read_stream` (each batch validated in full) / the same read unvalidated (as before) | **{t_ours / t_bare:.2f}x** |
| `read_stream` of the damaged copy / of the intact stream | {t_damaged / t_ours:.2f}x |
| rows kept from the damaged copy / rows written | {kept:,} / {args.rows:,} (one batch lost) |
| warning | `{str(caught[0].message).split(": ", 1)[1] if caught else "none"}` |
| `seal_stream` (read, validate, write zstd Parquet) / `read_stream` | {t_seal / t_ours:.2f}x |
| absolute: unvalidated read / `read_stream` / `seal_stream` (s) | {t_bare:.2f} / {t_ours:.2f} / {t_seal:.2f} |

Before this change a damaged batch ended the read: the damaged copy gave the
{(len(spans) // 2) * BATCH:,} rows before it and nothing after, silently."""
        print(body)
        if not args.no_write:
            write_section("Storage: reading stream segments", body)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
