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
from bench.bench_analysis import simulate

HERE = Path(__file__).resolve().parents[1]
DAY = 86_400.0
DATA = Path(os.environ.get("WSREPLAY_BENCH_DATA", "/work/data/i13dask"))
#: Where each size's capture lives (the day and the week are shared with other benchmarks).
CAPTURES = {
    "day": Path("/tmp/wsreplay-bench-analysis/day-1000-seed7"),
    "week": Path("/tmp/wsreplay-bench-report/1000x7d-seed7"),
    "month": DATA / "1000x30d-seed7",
}
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
                      dashboard_address=None) as cluster, Client(cluster) as client:
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


def make_month(path: Path, outposts: int = 1000, days: float = 30.0, seed: int = 7, group: int = 25) -> Path:
    """*days* simulated days of *outposts* outposts in groups of *group* (a marker per finished group; resumable)."""
    if (path / "done").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    for k, start in enumerate(range(0, outposts, group)):
        marker = path / f".group-{k}"
        if marker.exists():
            continue
        part = path.parent / f"part-{k}"
        if part.exists():
            for f in part.iterdir():
                f.unlink()
            part.rmdir()
        simulate(part, min(group, outposts - start), days * DAY, seed * 1000 + k)
        for f in part.glob("*.parquet"):
            f.rename(path / f.name)
        for f in part.iterdir():
            f.unlink()
        part.rmdir()
        marker.touch()
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
    parser.add_argument("--sizes", nargs="+", choices=list(CAPTURES), default=list(CAPTURES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="6GiB", help="per worker (distributed's memory_limit)")
    parser.add_argument("--no-raw", action="store_true", help="skip the day as recorded (not compacted)")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    rows: list[str] = []
    results: dict[str, dict] = {}
    for size in args.sizes:
        src = CAPTURES[size]
        if size == "month":
            make_month(src)
        elif not (src / "done").exists() and not any(src.glob("*.parquet")):
            raise SystemExit(f"{src} is missing: make it with bench/bench_analysis.py or bench/bench_report.py first")
        if size == "day" and not args.no_raw:
            r = measure(src, args.workers, args.memory_limit)
            print("day (as recorded)", json.dumps(r), flush=True)
            rows.append(_row("day, as recorded", r, None))
        dst, took = compacted(src)
        r = measure(dst, args.workers, args.memory_limit)
        results[size] = r
        print(size, json.dumps(r), f"compact {took}", flush=True)
        rows.append(_row(f"{size}, compacted", r, took))
    body = f"""Rerun: `flock /work/data/heavy.lock .venv/bin/python -m bench.bench_dask` (`--sizes day week month`;
the month is generated on first use, ~10 min of CPU and 7.7 GB, into `{DATA}`).

1,000 simulated outposts (10 s HELLO interval, faults on), analysed with `wsreplay.dask.load(path,
columns=columns_for("outages", "ack_latency"))` then `outages(level="outpost")`, `uptime(level="outpost")` and
`latency_percentiles(by="outpost_uuid")`, each computed on a `distributed.LocalCluster` of {args.workers} worker
processes, 1 thread and `memory_limit={args.memory_limit}` each (every call is one pass over the partitions: the
capture is read three times). Times in seconds; peak memory is each worker process's `ru_maxrss` (MB). The
machine has 2 cores and was shared with three other helpers' work while this ran: absolute times are noisy.

{_HEAD}
""" + "\n".join(rows)  # fmt: skip
    print(body)
    if not args.no_write:
        write_section("Dask", body)


if __name__ == "__main__":
    main()
