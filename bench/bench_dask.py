"""Dask benchmark: a day, a week and a month of 1,000 simulated outposts analysed on a 2-worker LocalCluster.

For each capture, in a fresh process each (the same run, side by side):

* ``wsreplay compact`` into a copy (one-off, timed apart; cached);
* on a ``distributed.LocalCluster`` of 2 worker processes, 1 thread each, each
  with a memory limit: ``wsreplay.dask.load`` of the analysis columns, then
  ``outages(level="outpost")``, ``uptime(level="outpost")`` and
  ``latency_percentiles(by="outpost_uuid")`` (each a pass over every partition
  on the workers), with the wall time of each, the peak resident memory of
  each worker process (``ru_maxrss``) and of the client, and the time per
  million frames (linear growth keeps it flat);
* for the day also the capture as recorded (not compacted), where every
  partition scans every segment.

Captures are simulated in virtual time (10 s HELLO interval, faults on, no
replicas) in groups of outposts, as ``bench/bench_report.py`` makes its week:
the day is ``bench/bench_analysis.py``'s, the week ``bench/bench_report.py``'s,
the month is made here in groups of 25 outposts. Generating and measuring are
heavy: run under the machine's heavy-work lock::

    flock /work/data/heavy.lock .venv/bin/python -m bench.bench_dask            # day, week, month
    flock /work/data/heavy.lock .venv/bin/python -m bench.bench_dask --sizes day week
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench._report import write_section

HERE = Path(__file__).resolve().parents[1]
DAY = 86_400.0
DATA = Path(os.environ.get("WSREPLAY_BENCH_DATA", "/work/data/i13dask"))
#: Where each size's capture lives (the day and the week are shared with other benchmarks).
#: The day as bench/bench_analysis.py records it (all outposts in every segment): compacted here, and as is.
RECORDED_DAY = Path("/tmp/wsreplay-bench-analysis/day-1000-seed7")
DAYS = {"day": 1.0, "week": 7.0, "month": 30.0}

_MEASURE = r"""
import json, resource, sys, time
capture, workers, mem = sys.argv[1], int(sys.argv[2]), sys.argv[3]
import pyarrow.parquet as pq
from pathlib import Path
from distributed import Client, LocalCluster
import wsreplay, wsreplay.dask
from wsreplay.store.listing import segment_files

if __name__ == "__main__":
    rows = sum(pq.ParquetFile(str(p)).metadata.num_rows for p in segment_files(capture).parquet)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=mem,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        client.run(lambda: __import__("wsreplay.analysis.outage_table"))  # worker imports are not timed
        times = {}
        t0 = time.perf_counter()
        frames = wsreplay.dask.load(capture, columns=wsreplay.analysis.columns_for("outages", "ack_latency"))
        times["load"] = time.perf_counter() - t0
        t = time.perf_counter()
        out = wsreplay.outages(frames, level="outpost")
        times["outages"] = time.perf_counter() - t
        t = time.perf_counter()
        up = wsreplay.uptime(frames, level="outpost")
        times["uptime"] = time.perf_counter() - t
        t = time.perf_counter()
        pct = wsreplay.latency_percentiles(frames, by="outpost_uuid")
        times["latency_percentiles"] = time.perf_counter() - t
        wall = time.perf_counter() - t0
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps({"rows": rows, "partitions": frames.npartitions, "wall": wall, "times": times,
                      "worker_peak_mb": sorted(peaks.values()), "client_peak_mb":
                      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "outages": len(out), "outposts": len(up), "latency_rows": len(pct)}))
"""


_SIMULATE = r"""
import random, sys, uuid, zlib
from dataclasses import replace
from wsreplay.sim import Scenario, simulate_virtual

out, n, days, seed, outposts = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
for b in [int(x) for x in sys.argv[6].split(",")]:
    k = outposts // n + (1 if b < outposts % n else 0)
    sc = Scenario.generate(outposts=k, duration=days * 86400.0, interval=10.0, seed=seed * 1000 + b, faults=True,
                           replica_share=0.0)
    rng = random.Random(seed * 100_003 + b)
    pks = []
    while len(pks) < k:  # pks of bucket b: crc32(pk) % n == b, as wsreplay.store.buckets computes it
        pk = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if zlib.crc32(pk.encode()) % n == b:
            pks.append(pk)
    pk_of = {o.pk: p for o, p in zip(sc.outposts, pks)}
    sc = replace(sc, outposts=[replace(o, pk=pk_of[o.pk]) for o in sc.outposts],
                 faults=[replace(f, outpost=pk_of.get(f.outpost, f.outpost)) for f in sc.faults])
    simulate_virtual(sc, out=f"{out}/part-{b}", save_truth=False)
"""


def make_bucketed(path: Path, days: float, outposts: int = 1000, buckets: int = 128, seed: int = 7) -> Path:
    """*days* simulated days of *outposts* outposts, simulated bucket by bucket (cached, resumable).

    Each of the *buckets* groups is the outposts of one bucket (``crc32(pk) %
    buckets``: the pks are drawn until they fall in it), simulated on its own,
    so every segment holds the outposts of one bucket, as ``wsreplay compact``
    leaves a capture; compacting a capture as recorded takes about 16 s per
    million frames here (see the table), too long for a month in this run.
    """
    if (path / "done").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    todo = [b for b in range(buckets) if not (path / f".bucket-{b}").exists()]
    for i in range(0, len(todo), 16):
        batch = todo[i : i + 16]
        code = [sys.executable, "-c", _SIMULATE, str(path), str(buckets), str(days), str(seed), str(outposts)]
        subprocess.run([*code, ",".join(map(str, batch))], check=True, cwd=HERE)
        for b in batch:
            part = path / f"part-{b}"
            for f in part.glob("*.parquet"):
                f.rename(path / f.name)
            for f in part.iterdir():
                f.unlink()
            part.rmdir()
            (path / f".bucket-{b}").touch()
    (path / "done").touch()
    return path


def compacted(src: Path) -> tuple[Path, float | None]:
    """A compacted copy of *src* in DATA (cached) and how long compacting took (None: cached)."""
    dst = DATA / f"{src.name}-compacted"
    done = DATA / f"{src.name}-compacted.done"
    if done.exists():
        return dst, None
    if dst.exists():
        subprocess.run(["rm", "-rf", str(dst)], check=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "wsreplay", "compact", str(src), "--out", str(dst)], check=True, cwd=HERE)
    took = time.perf_counter() - t0
    done.write_text(f"{took}\n")
    return dst, took


def measure(capture: Path, workers: int, memory_limit: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(capture), str(workers), memory_limit],
        check=True, capture_output=True, text=True, cwd=HERE,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


_HEAD = (
    "| capture | frames | partitions | load | outages | uptime | latency_percentiles | total | s per M frames "
    "| worker peak MB | client peak MB | compact s |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _row(label: str, r: dict, compact_s: float | None) -> str:
    t = r["times"]
    per_m = r["wall"] / (r["rows"] / 1e6)
    peaks = " / ".join(f"{p:,.0f}" for p in r["worker_peak_mb"])
    comp = "-" if compact_s is None else f"{compact_s:,.0f}"
    return (
        f"| {label} | {r['rows'] / 1e6:,.1f} M | {r['partitions']} | {t['load']:.1f} | {t['outages']:.1f} | "
        f"{t['uptime']:.1f} | {t['latency_percentiles']:.1f} | **{r['wall']:.1f}** | {per_m:.2f} | {peaks} | "
        f"{r['client_peak_mb']:,.0f} | {comp} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=list(DAYS), default=list(DAYS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="6GiB", help="per worker (distributed's memory_limit)")
    parser.add_argument("--no-recorded", action="store_true", help="skip the day as recorded (and its compaction)")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    rows: list[str] = []
    if "day" in args.sizes and not args.no_recorded:
        if not RECORDED_DAY.exists():
            raise SystemExit(f"{RECORDED_DAY} is missing: python -m bench.bench_analysis makes it")
        r = measure(RECORDED_DAY, args.workers, args.memory_limit)
        print("day as recorded", json.dumps(r), flush=True)
        rows.append(_row("day, as recorded", r, None))
        dst, took = compacted(RECORDED_DAY)
        r = measure(dst, args.workers, args.memory_limit)
        print("day compacted", json.dumps(r), f"compact {took}", flush=True)
        rows.append(_row("day, as recorded, compacted", r, took))
    for size in args.sizes:
        path = make_bucketed(DATA / f"1000x{DAYS[size]:g}d-bucketed-seed7", DAYS[size])
        r = measure(path, args.workers, args.memory_limit)
        print(size, json.dumps(r), flush=True)
        rows.append(_row(f"{size}, split by bucket", r, None))
    body = f"""Rerun: `flock /work/data/heavy.lock .venv/bin/python -m bench.bench_dask` (`--sizes day week month`;
the captures split by bucket are generated on first use into `{DATA}`: the week took ~10 min of the machine
and 532 MB, the month needs ~4x that).

1,000 simulated outposts (10 s HELLO interval, faults on), analysed with `wsreplay.dask.load(path,
columns=columns_for("outages", "ack_latency"))` then `outages(level="outpost")`, `uptime(level="outpost")` and
`latency_percentiles(by="outpost_uuid")`, each computed on a `distributed.LocalCluster` of {args.workers} worker
processes, 1 thread and `memory_limit={args.memory_limit}` each (every call is one pass over the partitions: the
capture is read three times). Times in seconds; peak memory is each worker process's `ru_maxrss` (MB). The
machine has {os.cpu_count()} cores; load average when the run ended: {os.getloadavg()[0]:.1f} (1 min),
{os.getloadavg()[1]:.1f} (5 min): other work ran beside it when that is above ~2, so absolute times are noisy.

{_HEAD}
""" + "\n".join(rows)  # fmt: skip
    print(body)
    if not args.no_write:
        write_section("Dask", body)


if __name__ == "__main__":
    main()
