"""Report benchmark: ``wsreplay report`` on a simulated one-week capture of 1,000 outposts.

Figures, all taken in one run on the same capture, each in a fresh process:

* the wall time of ``wsreplay.report(capture)`` (load, analysis in outpost
  groups, figures, HTML) on the capture as recorded (uncompacted: split into
  temporary per-bucket files in one pass) and on a compacted copy of it
  (``wsreplay.compact(capture, out=...)``, made in ``--work``), next to the
  time pyarrow needs just to read the columns the report reads
  (``pq.read_table(files, columns=...)``, string columns dictionary-encoded),
  and their ratios;
* the peak resident memory of each, and the size of the largest group the
  report holds at once;
* the time of the compaction, and the size of the HTML page.

The capture is made by the simulator in virtual time (``simulate_virtual``,
10 s HELLO interval, faults on, one replica per outpost) and cached in
``--cache``. Rerun: ``flock /work/data/heavy.lock .venv/bin/python -m bench.bench_report``
(``--outposts 1000 --days 7``).
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
DEFAULT_CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "wsreplay-bench-report"
DAY = 86_400.0

_MEASURE = r"""
import json, resource, sys, time
mode, capture, out = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
if mode == "report":
    import wsreplay
    rep = wsreplay.report(capture)
    rep.save(out)
    extra = {"timings": rep.timings, "chunks": rep.chunks, "outages": rep.outages, "outposts": rep.outposts,
             "html_bytes": len(rep.html.encode())}
elif mode == "compact":
    import shutil, wsreplay
    shutil.rmtree(out, ignore_errors=True)
    rep = wsreplay.compact(capture, out=out)
    extra = {"rows": rep.rows, "buckets": rep.buckets, "files": rep.files, "bytes": rep.bytes_after}
else:
    import pyarrow.parquet as pq
    from pathlib import Path
    from wsreplay.reporting import REPORT_COLUMNS
    from wsreplay.schema import CATEGORICAL_COLUMNS
    cols = list(REPORT_COLUMNS)
    files = sorted(str(p) for p in Path(capture).glob("*.parquet") if not p.name.startswith("_"))
    files += sorted(str(p) for p in Path(capture).glob("bucket=*/*.parquet"))
    table = pq.read_table(files, columns=cols, read_dictionary=[c for c in cols if c in CATEGORICAL_COLUMNS])
    extra = {"rows": table.num_rows}
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_mb": ru.ru_maxrss / 1024, **extra}))
"""


def make_capture(cache: Path, outposts: int, days: float, seed: int = 7, group: int = 100) -> Path:
    """A capture directory of *days* simulated days of *outposts* outposts (cached).

    Simulated *group* outposts at a time (a week of 1,000 outposts in one
    virtual run would need ~15 GB), each group its own seeded scenario and
    capture id, then gathered into one directory: one capture of several
    recording runs, as ``load`` reads it.
    """
    out = cache / f"{outposts}x{days:g}d-seed{seed}"
    if (out / "done").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    for k, start in enumerate(range(0, outposts, group)):
        n = min(group, outposts - start)
        part = cache / f"part-{k}"
        if part.exists():
            for f in part.iterdir():
                f.unlink()
            part.rmdir()
        simulate(part, n, days * DAY, seed * 1000 + k)
        for f in part.glob("*.parquet"):
            f.rename(out / f.name)
        for f in part.iterdir():
            f.unlink()
        part.rmdir()
    (out / "done").touch()
    return out


def measure(mode: str, capture: Path, out: Path, tree: Path | None = None) -> dict:
    """One measurement in a fresh process; *tree*: the source tree of another wsreplay to run instead."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, mode, str(capture), str(out)],
        check=True, capture_output=True, text=True, cwd=tree or HERE, env=env,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def largest_group(capture: Path, chunk_rows: int = 20_000_000) -> tuple[int, int]:
    """Rows of the largest group of buckets the report reads from the compacted *capture*, and of its largest bucket."""
    import pyarrow.parquet as pq

    from wsreplay.store.layout import layout_of
    from wsreplay.store.partition import Partitions

    lay = layout_of(capture)
    assert lay is not None
    parts = Partitions(buckets=lay.buckets, columns=[], files=lay.files)
    parts.rows = {b: sum(pq.read_metadata(str(f)).num_rows for f in fs) for b, fs in lay.files.items()}
    groups = parts.groups(chunk_rows)
    return max(sum(parts.rows[b] for b in g) for g in groups), max(parts.rows.values())


def breakdown(packed: Path, buckets: tuple[int, ...] = (0, 1)) -> None:
    """Print where one group's time goes on the compacted copy: read, sort, conversion, each analysis."""
    import pyarrow.parquet as pq

    from wsreplay.analysis import ack_latency, fleet, outages, restarts, trigger_fanout, uptime
    from wsreplay.reporting.analyse import _OUTPOST_COLUMNS, REPORT_COLUMNS
    from wsreplay.schema import CATEGORICAL_COLUMNS, table_to_frames
    from wsreplay.store.partition import bucket_partitions
    from wsreplay.store.span import capture_span

    with bucket_partitions(packed, columns=REPORT_COLUMNS, chunk_rows=20_000_000) as parts:
        span = capture_span(packed)
        files = [str(f) for b in buckets for f in parts.files[b]]
        dict_cols = [c for c in _OUTPOST_COLUMNS if c in CATEGORICAL_COLUMNS]
        t = time.perf_counter()
        pq.read_table(files, columns=list(_OUTPOST_COLUMNS), read_dictionary=dict_cols)
        print(f"bare read {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        table = parts.table(list(buckets), columns=_OUTPOST_COLUMNS)
        print(f"{table.num_rows:,} frames: read + sort {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        frames = table_to_frames(table)
        print(f"table_to_frames {time.perf_counter() - t:.1f} s")
        for name, fn in [
            ("outages", lambda: outages(frames, level="outpost", span=span)),
            ("instance outages", lambda: outages(frames, level="instance", span=span)),
            ("uptime", lambda: uptime(frames, level="outpost", span=span)),
            ("fleet", lambda: fleet(frames, level="outpost")),
            ("restarts", lambda: restarts(frames)),
            ("ack_latency", lambda: ack_latency(frames)),
            ("fan-out", lambda: trigger_fanout(frames)),
        ]:
            t = time.perf_counter()
            fn()
            print(f"{name} {time.perf_counter() - t:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outposts", type=int, default=1000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--work", type=Path, default=Path("/work/data/i13store"), help="where the compacted copy goes")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    parser.add_argument("--breakdown", action="store_true", help="only time one group's steps on the compacted copy")
    parser.add_argument("--old", type=Path, help="an earlier wsreplay source tree to report with too")
    args = parser.parse_args()
    if args.breakdown:
        breakdown(args.work / f"{args.outposts}x{args.days:g}d-seed7-compacted")
        return
    args.cache.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    capture = make_capture(args.cache, args.outposts, args.days)
    sim_s = time.perf_counter() - t
    disk = sum(p.stat().st_size for p in capture.glob("*.parquet"))
    packed = args.work / f"{capture.name}-compacted"
    base_1 = measure("pyarrow", capture, args.cache / "unused.html")
    rep = measure("report", capture, args.cache / "report.html")
    comp = measure("compact", capture, packed)
    base_c = measure("pyarrow", packed, args.cache / "unused.html")
    rep_c = measure("report", packed, args.cache / "report-compacted.html")
    old = measure("report", packed, args.cache / "report-old.html", args.old) if args.old else None
    base_2 = measure("pyarrow", capture, args.cache / "unused.html")
    # the bare read swings from run to run here: it is taken before and after the reports, and its mean used
    base = {k: (base_1[k] + base_2[k]) / 2 for k in ("wall", "cpu")} | {
        "rss_mb": max(base_1["rss_mb"], base_2["rss_mb"]),
        "rows": base_1["rows"],
    }
    group_rows, bucket_rows = largest_group(packed, 20_000_000 // 2)
    ratio, ratio_c = rep["wall"] / base["wall"], rep_c["wall"] / base["wall"]

    def rss(r: dict, b: dict) -> str:
        return f"{r['rss_mb']:,.0f} MB / {b['rss_mb']:,.0f} MB"

    def steps(r: dict) -> str:
        return ", ".join(f"{k} {v:.0f} s" for k, v in r["timings"].items())

    cmd = "flock /work/data/heavy.lock .venv/bin/python -m bench.bench_report" + (
        "" if (args.outposts, args.days) == (1000, 7.0) else f" --outposts {args.outposts} --days {args.days:g}"
    )
    old_row = ""
    if old is not None:
        cmd = f"mkdir -p {args.old} && git archive COMMIT | tar -x -C {args.old} && {cmd} --old {args.old}"
        old_row = (
            f"| the report before (`--old {args.old}`), of the compacted copy | | **{old['wall']:.0f} s**: "
            f"{old['wall'] / base['wall']:.1f}x the read, peak RSS {old['rss_mb']:,.0f} MB; steps: {steps(old)} |\n"
        )
    body = f"""
Rerun: `{cmd}` (the capture is cached in `{args.cache}`; simulating it took {sim_s:.0f} s this time, 0 when
cached; the compacted copy goes to `{packed}`). 2 cores, 23 GB; load average when the run ended:
{os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[1]:.1f} (5 min). Absolute times are noisy here: compare the
ratios.

`wsreplay.report(capture)` on a simulated capture of **{args.outposts:,} outposts over {args.days:g} days**
(virtual time, 10 s HELLO interval, faults on; simulated 100 outposts at a time, each group its own
seeded scenario with its own server restart and latency spike): **{base["rows"]:,} frames**, {disk / 1e9:.2f} GB
of Parquet as recorded, {comp["bytes"] / 1e9:.2f} GB compacted ({comp["buckets"]} buckets, {comp["files"]} files).
Baseline: pyarrow reading the columns the report reads (`pq.read_table(files, columns=REPORT_COLUMNS,
read_dictionary=...)`) from the recorded segments, once before the reports and once after them
({base_1["wall"]:.1f} s and {base_2["wall"]:.1f} s; the table gives their mean). Each in a fresh process, one after
the other.

| figure | as recorded | compacted |
|---|---|---|
| report wall time | **{rep["wall"]:.0f} s** | **{rep_c["wall"]:.0f} s** |
| pyarrow read of the same columns | {base["wall"]:.0f} s | {base_c["wall"]:.0f} s |
| **report / pyarrow read of the recorded segments** | **{ratio:.1f}x** | **{ratio_c:.1f}x** |
| report CPU time / pyarrow CPU time | {rep["cpu"] / base["cpu"]:.1f}x | {rep_c["cpu"] / base["cpu"]:.1f}x |
| peak RSS: report / pyarrow read | {rss(rep, base)} | {rss(rep_c, base_c)} |
| outpost groups analysed | {rep["chunks"]} | {rep_c["chunks"]} |
| outages found (outpost level) | {rep["outages"]:,} | {rep_c["outages"]:,} |
| HTML page (self-contained, figures inline) | {rep["html_bytes"] / 1e6:.2f} MB | {rep_c["html_bytes"] / 1e6:.2f} MB |
{old_row}
`wsreplay compact` of the capture into a new directory: {comp["wall"]:.0f} s, peak RSS {comp["rss_mb"]:,.0f} MB.
Report steps as recorded: {steps(rep)}. Compacted: {steps(rep_c)}.

The capture exceeds the default group size (`chunk_rows`, 20 M frames), so the report reads it by outpost
bucket, in groups of at most `chunk_rows` / 2 frames, and holds two groups at a time (one analysed, the next
being read): on the compacted copy a group reads only its buckets' files (largest group {group_rows:,} frames,
largest bucket {bucket_rows:,}); as recorded it first splits the segments into temporary per-bucket files in
one pass (the `load` step; the capture itself is untouched), then reads each group from those. Peak memory
is that of two groups of at most 10 M frames each (and the analysis of one), not of the {base["rows"]:,}-frame
capture. The HELLO interval histogram is left out at this size (`hello_limit`).
"""
    print(body)
    if not args.no_write:
        write_section("Report", body)


if __name__ == "__main__":
    main()
