"""Storage benchmark: write and read N HELLO/ACK rows, as sealed segments and compacted.

Figures: bytes on disk per row of sealed segments and of the same capture
compacted into outpost buckets (``wsreplay.compact``), the ratio of
``wsreplay.load`` time to a bare ``pyarrow.parquet.read_table`` of the same
columns (same files, same run), ``load`` of one outpost and of everything from
each layout, and write and compaction throughput.
Rerun: ``flock /work/data/heavy.lock .venv/bin/python -m bench.bench_store [--rows N]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import wsreplay
from bench._report import write_section
from wsreplay.protocol import encode_ack, encode_hello, hello_args
from wsreplay.schema import COLUMNS, SCHEMA


def hello_ack_table(rows: int, outposts: int = 1000, seed: int = 0) -> pa.Table:
    """A capture table of HELLO/ACK pairs of *outposts* instances, 10 s apart, ~3 ms ACK latency."""
    rng = np.random.default_rng(seed)
    pairs = rows // 2
    inst = np.arange(pairs) % outposts
    rounds = np.arange(pairs) // outposts
    t0 = 1_795_838_763_000_000_000
    hello_ts = t0 + rounds * 10_000_000_000 + inst * (10_000_000_000 // outposts) + rng.integers(0, 50_000_000, pairs)
    ack_ts = hello_ts + rng.lognormal(np.log(3e6), 0.3, pairs).astype(np.int64)
    ts = np.empty(pairs * 2, dtype=np.int64)
    ts[0::2], ts[1::2] = hello_ts, ack_ts
    order = np.argsort(ts, kind="stable")
    idx = np.repeat(inst, 2)[order]
    is_ack = np.tile([False, True], pairs)[order]
    ts = ts[order]

    pks = np.array([f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(outposts)], dtype=object)
    insts = np.array([f"{i:08x}-1111-4111-8111-{i:012x}" for i in range(outposts)], dtype=object)
    hellos = np.array(
        [encode_hello(hello_args(uuid=u, version="2024.2.1", hostname=f"outpost-{i}")) for i, u in enumerate(insts)],
        dtype=object,
    )

    def dict_col(values: np.ndarray, codes: np.ndarray) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(values, pa.string())).cast(
            pa.string()
        )

    n = len(ts)
    hostnames = np.array([f"outpost-{i}" for i in range(outposts)], dtype=object)
    payload_codes = np.where(is_ack, outposts, idx)
    cols = {
        "ts": pa.array(ts, pa.timestamp("ns", tz="UTC")),
        "capture_id": pa.array(np.full(n, "bench", dtype=object), pa.string()),
        "conn_id": dict_col(np.array([f"c{i}" for i in range(outposts)], dtype=object), idx),
        "seq": pa.array(rounds.repeat(2)[order] * 2 + is_ack + 1, pa.int64()),
        "endpoint": pa.array(np.full(n, "outpost", dtype=object), pa.string()),
        "path": dict_col(np.array([f"/ws/outpost/{p}/" for p in pks], dtype=object), idx),
        "outpost_uuid": dict_col(pks, idx),
        "instance_uuid": dict_col(insts, idx),
        "event": pa.array(np.full(n, "message", dtype=object), pa.string()),
        "direction": pa.array(np.where(is_ack, "to_peer", "to_server").astype(object), pa.string()),
        "opcode": pa.array(np.full(n, "text", dtype=object), pa.string()),
        "payload": dict_col(np.append(hellos, encode_ack()), payload_codes),
        "size": pa.array(np.where(is_ack, len(encode_ack()), len(hellos[0])), pa.int64()),
        "instruction": pa.array(np.where(is_ack, 0, 1).astype(np.int16), pa.int16()),
        "instruction_name": pa.array(np.where(is_ack, "ACK", "HELLO").astype(object), pa.string()),
        "version": pa.array(np.where(is_ack, None, "2024.2.1"), pa.string()),
        "build_hash": pa.array(np.where(is_ack, None, ""), pa.string()),
        "hostname": dict_col(
            np.append(hostnames, None),
            np.where(is_ack, outposts, idx),
        ),
    }
    arrays = [cols.get(name, pa.nulls(n, typ)) for name, typ in COLUMNS.items()]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def timed(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wsreplay-bench-store-"))
    try:
        table = hello_ack_table(args.rows)
        out = tmp / "cap"
        t = time.perf_counter()
        with wsreplay.CaptureWriter(out, capture_id="bench", autoflush=False) as w:
            step = 1 << 20
            for off in range(0, table.num_rows, step):
                w.write_table(table.slice(off, step))
                w.flush()
        write_s = time.perf_counter() - t
        files = sorted(out.glob("*.parquet"))
        disk = sum(p.stat().st_size for p in files)
        cols = ["ts", "conn_id", "outpost_uuid", "instance_uuid", "direction", "instruction_name", "event"]

        def bare() -> None:
            pq.read_table([str(p) for p in files] if len(files) > 1 else files[0], columns=cols)

        def bare_pandas() -> None:
            pq.read_table(files[0] if len(files) == 1 else [str(p) for p in files], columns=cols).to_pandas()

        def ours() -> None:
            wsreplay.load(out, columns=cols)

        def ours_all() -> None:
            wsreplay.load(out)

        def bare_all() -> None:
            pq.read_table(files[0] if len(files) == 1 else [str(p) for p in files])

        def ours_hour() -> None:
            wsreplay.load(out, start=table["ts"][0].as_py(), end=table["ts"][0].as_py() + np.timedelta64(1, "h"))

        packed = tmp / "packed"
        t = time.perf_counter()
        rep = wsreplay.compact(out, out=packed)
        compact_s = time.perf_counter() - t
        bucket_disk = sum(p.stat().st_size for p in packed.glob("bucket=*/*.parquet"))
        pk = table["outpost_uuid"][0].as_py()

        timings = {
            "bare": timed(bare),
            "ours": timed(ours),
            "bare_pandas": timed(bare_pandas),
            "bare_all": timed(bare_all),
            "ours_all": timed(ours_all),
            "hour": timed(ours_hour),
            "one_sealed": timed(lambda: wsreplay.load(out, outpost=[pk])),
            "one_packed": timed(lambda: wsreplay.load(packed, outpost=[pk])),
            "all_packed": timed(lambda: wsreplay.load(packed)),
            "cols_packed": timed(lambda: wsreplay.load(packed, columns=cols)),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = table.num_rows
    ratio = {
        k: f"{v / timings[b]:.2f}x"
        for k, v, b in [
            ("cols", timings["ours"], "bare"),
            ("pandas", timings["ours"], "bare_pandas"),
            ("all", timings["ours_all"], "bare_all"),
            ("hour", timings["hour"], "ours_all"),
        ]
    }
    packed_row = f"**{bucket_disk / n:.2f}** ({bucket_disk / 1e6:,.1f} MB in {rep.files} file(s))"

    def side(a: str, b: str, bold: bool = False) -> str:
        r = f"{timings[a] / timings[b]:.2f}x"
        return f"{timings[a]:.2f} s / {timings[b]:.2f} s = " + (f"**{r}**" if bold else r)

    body = f"""Rerun: `flock /work/data/heavy.lock .venv/bin/python -m bench.bench_store --rows {args.rows}`
(the machine is shared by four helpers: absolute times are noisy, compare the ratios).

{n:,} HELLO/ACK rows of 1,000 outposts (10 s interval, ~3 ms ACK latency), written through
`CaptureWriter.write_table` in 1 Mi-row flushes, sealed to zstd Parquet, then compacted into
outpost buckets with `wsreplay.compact(capture, out=...)` (files sorted by outpost, connection, time
within each UTC day, so each connection's rows lie together and compress to less than half).

| figure | value |
|---|---|
| bytes on disk per row, sealed segments | **{disk / n:.2f}** ({disk / 1e6:,.1f} MB in {len(files)} file(s)) |
| bytes on disk per row, compacted (`wsreplay compact`, {rep.buckets} buckets) | {packed_row} |
| write throughput (stream + seal) | {n / write_s / 1e6:.2f} M rows/s |
| compaction throughput (sealed -> buckets) | {n / compact_s / 1e6:.2f} M rows/s |
| `load(columns=analysis columns)` / bare `pq.read_table` (same columns) | **{ratio["cols"]}** |
| same, vs `pq.read_table(...).to_pandas()` | {ratio["pandas"]} |
| `load()` all columns / bare `pq.read_table` all columns | {ratio["all"]} |
| `load(start, end)` of one hour / `load()` of the whole capture | {ratio["hour"]} |
| `load(outpost=[one])`: compacted / sealed | {side("one_packed", "one_sealed", bold=True)} |
| `load()` all columns: compacted / sealed | {side("all_packed", "ours_all")} |
| `load(columns=analysis columns)`: compacted / sealed | {side("cols_packed", "ours")} |

Analysis columns: `{", ".join(cols)}`. `load` returns pandas (categoricals, UTC timestamps, nullable
ints); the bare read returns an Arrow table, so the ratio includes the conversion to pandas. It is
below 1 because `load` asks pyarrow to keep the low-cardinality string columns dictionary-encoded
(they become pandas Categoricals) where the bare read materialises every string.
"""
    print(body)
    if not args.no_write:
        write_section("Storage", body)


if __name__ == "__main__":
    main()
