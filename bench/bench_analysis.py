"""Analysis benchmark: one simulated day of a 1,000-outpost fleet, load + outages + uptime + ack_latency.

Figures, all taken in one run on the same files:

* the time of ``wsreplay.load(columns=...)`` + ``outages`` + ``uptime`` +
  ``ack_latency`` divided by the time pyarrow needs to read the same columns
  (``pq.read_table(files, columns=...)``), each measured in a fresh process,
  interleaved, median of ``--repeats``;
* the peak resident memory of each (``ru_maxrss`` of the measuring process,
  next to that of a process that only imports wsreplay);
* how both grow from about 1 M to about 17 M frames.

* DuckDB on the same files with the same threads (all cores, as pyarrow
  reads): the per-instance HELLO gaps (``LAG`` over a window partitioned by
  instance) and the HELLO-to-ACK ``ASOF`` join per connection, both
  materialised as Arrow tables, next to wsreplay's ``load`` + analyses;
* ``load()`` of every column next to a bare ``pq.read_table`` of every column
  (plain, and with ``read_dictionary=`` the low-cardinality string columns);

* with ``--old TREE`` (a source tree of an earlier wsreplay, e.g. ``git archive
  7d4d944``): the same wsreplay measurement with that tree's code
  (``PYTHONPATH=TREE``, same venv), interleaved in the same rounds on the same
  files, so old and new are compared side by side in one run.

The captures are made by the simulator in virtual time (``simulate_virtual``,
one day, 10 s HELLO interval, faults on, one replica per outpost) and cached
in ``--cache``. Rerun: ``.venv/bin/python -m bench.bench_analysis``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench._report import write_section

HERE = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "wsreplay-bench-analysis"
DAY = 86_400.0
FUNCTIONS = ("outages", "uptime", "ack_latency")


def _columns() -> list[str]:
    from wsreplay.analysis import columns_for

    return columns_for(*FUNCTIONS)


def make_capture(cache: Path, outposts: int, seed: int = 7) -> Path:
    """A capture directory of one simulated day of *outposts* outposts (cached)."""
    out = cache / f"day-{outposts}-seed{seed}"
    if (out / "done").exists():
        return out
    simulate(out, outposts, DAY, seed)
    (out / "done").touch()
    return out


def simulate(out: Path, outposts: int, duration: float, seed: int) -> None:
    """Simulate *outposts* outposts for *duration* seconds (faults on, no replica share) into the directory *out*.

    In a process of its own, so that the simulator's memory is not counted in the measurements.
    """
    code = (
        "from wsreplay.sim import Scenario, simulate_virtual\n"
        f"sc = Scenario.generate(outposts={outposts}, duration={duration}, interval=10.0, seed={seed}, "
        "faults=True, replica_share=0.0)\n"
        f"simulate_virtual(sc, out={str(out)!r}, save_truth=False)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=HERE)


def _files(path: Path) -> list[str]:
    return [str(p) for p in sorted(path.glob("*.parquet"))]


# ---------------------------------------------------------------- workers (run in fresh processes)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


#: DuckDB's side of the comparison: the HELLO gaps per instance and the HELLO-to-ACK matching per connection.
DUCKDB_GAPS = """
SELECT instance_uuid, conn_id, ts,
    epoch_ns(ts) - LAG(epoch_ns(ts)) OVER (PARTITION BY instance_uuid ORDER BY ts) AS gap_ns
FROM {src} WHERE event = 'message' AND direction = 'to_server' AND instruction_name = 'HELLO'
"""
DUCKDB_ASOF = """
WITH f AS (
    SELECT conn_id, ts FROM {src}
    WHERE event = 'message' AND direction = 'to_server' AND instruction_name IS NOT NULL AND instruction_name <> 'ACK'
), a AS (
    SELECT conn_id, ts AS ack_ts FROM {src}
    WHERE event = 'message' AND direction = 'to_peer' AND instruction_name = 'ACK'
)
SELECT f.conn_id, f.ts, a.ack_ts, epoch_ns(a.ack_ts) - epoch_ns(f.ts) AS latency_ns
FROM f ASOF LEFT JOIN a ON f.conn_id = a.conn_id AND a.ack_ts >= f.ts
"""


def _duckdb(path: Path) -> dict[str, object]:
    import duckdb

    threads = os.cpu_count() or 1
    c0, t0 = _cpu(), time.perf_counter()
    con = duckdb.connect(config={"threads": threads})
    src = "read_parquet([" + ", ".join(f"'{f}'" for f in _files(path)) + "])"
    gaps = con.sql(DUCKDB_GAPS.format(src=src)).to_arrow_table()
    t1 = time.perf_counter()
    pairs = con.sql(DUCKDB_ASOF.format(src=src)).to_arrow_table()
    t2 = time.perf_counter()
    answered = pairs.num_rows - pairs.column("ack_ts").null_count
    return {
        "total": t2 - t0,
        "gaps": t1 - t0,
        "asof": t2 - t1,
        "cpu": _cpu() - c0,
        "threads": threads,
        "hellos": gaps.num_rows,
        "acks": answered,
        "peak_mb": _peak_mb(),
    }


def worker(mode: str, path: Path) -> dict[str, object]:
    """Measure one mode in this process; returns timings (s), rows and peak RSS (MB)."""
    import wsreplay

    cols = _columns()
    base = _peak_mb()
    if mode == "imports":
        return {"peak_mb": base}
    if mode == "duckdb":
        return _duckdb(path)
    if mode in ("pyarrow", "pyarrow-dict", "pyarrow-all", "pyarrow-all-dict"):
        from wsreplay.schema import CATEGORICAL_COLUMNS

        read = None if mode.startswith("pyarrow-all") else cols
        wanted = list(CATEGORICAL_COLUMNS) if read is None else cols
        dicts = [c for c in wanted if c in CATEGORICAL_COLUMNS] if mode.endswith("-dict") else None
        c0, t0 = _cpu(), time.perf_counter()
        table = pq.read_table(_files(path), columns=read, read_dictionary=dicts)
        t1 = time.perf_counter()
        return {"total": t1 - t0, "cpu": _cpu() - c0, "rows": table.num_rows, "peak_mb": _peak_mb()}
    if mode == "load-all":
        c0, t0 = _cpu(), time.perf_counter()
        frames = wsreplay.load(path)
        t1 = time.perf_counter()
        return {"total": t1 - t0, "cpu": _cpu() - c0, "rows": len(frames), "peak_mb": _peak_mb()}
    c0, t0 = _cpu(), time.perf_counter()
    frames = wsreplay.load(path, columns=cols)
    t1 = time.perf_counter()
    out = wsreplay.outages(frames)
    t2 = time.perf_counter()
    up = wsreplay.uptime(frames)
    t3 = time.perf_counter()
    lat = wsreplay.ack_latency(frames)
    t4 = time.perf_counter()
    return {
        "total": t4 - t0,
        "cpu": _cpu() - c0,
        "load": t1 - t0,
        "outages": t2 - t1,
        "uptime": t3 - t2,
        "ack_latency": t4 - t3,
        "rows": len(frames),
        "outage_rows": len(out),
        "instances": len(up),
        "acks": int(lat["latency_s"].notna().sum()),
        "peak_mb": _peak_mb(),
    }


def _run(mode: str, path: Path, tree: Path | None = None) -> dict[str, float]:
    """Run one worker in a fresh process; *tree*: with that source tree's wsreplay (and its worker)."""
    cmd = [sys.executable, "-m", "bench.bench_analysis", "--worker", mode, str(path)]
    env = None
    if tree is not None:
        env = {**os.environ, "PYTHONPATH": str(tree)}
    res = subprocess.run(cmd, check=True, cwd=tree or HERE, capture_output=True, text=True, env=env)
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- driver


def measure(path: Path, repeats: int, old: Path | None = None) -> dict[str, Any]:
    arrow, arrow_dict, ws, was = [], [], [], []
    duck, load_all, arrow_all, arrow_all_dict = [], [], [], []
    for k in range(repeats):
        arrow.append(_run("pyarrow", path))
        arrow_dict.append(_run("pyarrow-dict", path))
        # A process runs faster right after one that used a lot of memory (on these VMs, memory freed a while
        # ago is slow to touch again), so the old tree and this one take turns at running first.
        if old is not None and k % 2:
            was.append(_run("wsreplay", path, old))
        ws.append(_run("wsreplay", path))
        if old is not None and not k % 2:
            was.append(_run("wsreplay", path, old))
        duck.append(_run("duckdb", path))
        arrow_all.append(_run("pyarrow-all", path))
        arrow_all_dict.append(_run("pyarrow-all-dict", path))
        load_all.append(_run("load-all", path))

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(float(r[key]) for r in runs)

    res: dict[str, Any] = {
        "rows": int(ws[0]["rows"]),
        "arrow_s": med(arrow, "total"),
        "ws_s": med(ws, "total"),
        "arrow_dict_s": med(arrow_dict, "total"),
        "ratios": [w["total"] / a["total"] for w, a in zip(ws, arrow)],
        "ratios_dict": [w["total"] / a["total"] for w, a in zip(ws, arrow_dict)],
        "cpu_ratio_dict": statistics.median(w["cpu"] / a["cpu"] for w, a in zip(ws, arrow_dict)),
        "ws_cpu": med(ws, "cpu"),
        "arrow_dict_cpu": med(arrow_dict, "cpu"),
        "arrow_mb": max(float(r["peak_mb"]) for r in arrow),
        "ws_mb": max(float(r["peak_mb"]) for r in ws),
        "outage_rows": ws[0]["outage_rows"],
        "instances": ws[0]["instances"],
        "acks": ws[0]["acks"],
        # the analyses alone (load excluded) over the dictionary read of their columns
        "analyses_s": statistics.median(float(w["total"]) - float(w["load"]) for w in ws),
        "analyses_ratio_dict": statistics.median(
            (float(w["total"]) - float(w["load"])) / float(a["total"]) for w, a in zip(ws, arrow_dict)
        ),
        "duck_s": med(duck, "total"),
        "duck_gaps_s": med(duck, "gaps"),
        "duck_asof_s": med(duck, "asof"),
        "duck_threads": duck[0]["threads"],
        "duck_hellos": duck[0]["hellos"],
        "duck_acks": duck[0]["acks"],
        "duck_mb": max(float(r["peak_mb"]) for r in duck),
        "duck_ratio": statistics.median(float(w["total"]) / float(d["total"]) for w, d in zip(ws, duck)),
        "load_all_s": med(load_all, "total"),
        "arrow_all_s": med(arrow_all, "total"),
        "arrow_all_dict_s": med(arrow_all_dict, "total"),
        "load_all_ratio": statistics.median(float(w["total"]) / float(a["total"]) for w, a in zip(load_all, arrow_all)),
        "load_all_ratio_dict": statistics.median(
            float(w["total"]) / float(a["total"]) for w, a in zip(load_all, arrow_all_dict)
        ),
        "load_all_mb": max(float(r["peak_mb"]) for r in load_all),
        "arrow_all_mb": max(float(r["peak_mb"]) for r in arrow_all),
    }
    for key in ("load", *FUNCTIONS):
        res[key] = med(ws, key)
    if was:
        res["old_s"] = med(was, "total")
        res["old_ratio"] = statistics.median(w["total"] / o["total"] for w, o in zip(ws, was))
        res["old_cpu_ratio"] = statistics.median(w["cpu"] / o["cpu"] for w, o in zip(ws, was))
        res["old_analysis_ratio"] = statistics.median(
            (w["total"] - w["load"]) / (o["total"] - o["load"]) for w, o in zip(ws, was)
        )
        for key in ("load", *FUNCTIONS):
            res[f"old_{key}"] = med(was, key)
        res["old_outage_rows"] = was[0]["outage_rows"]
        res["old_acks"] = was[0]["acks"]
        res["old_instances"] = was[0]["instances"]
    res["ratio"] = statistics.median(res["ratios"])  # type: ignore[arg-type]
    res["ratio_dict"] = statistics.median(res["ratios_dict"])  # type: ignore[arg-type]
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--outposts", type=int, nargs="+", default=[60, 1000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--no-write", action="store_true", help="print, do not update BENCHMARKS.md")
    ap.add_argument("--old", type=Path, help="source tree of an earlier wsreplay to measure side by side")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("path", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.path)))
        return 0

    args.cache.mkdir(parents=True, exist_ok=True)
    caps = {n: make_capture(args.cache, n) for n in sorted(args.outposts)}
    imports_mb = _run("imports", caps[min(caps)])["peak_mb"]
    results = {}
    for n, path in caps.items():
        results[n] = r = measure(path, args.repeats, args.old)
        print(
            f"{n:5d} outposts {r['rows']:>11,} rows: pyarrow {r['arrow_s']:.2f}s (dict {r['arrow_dict_s']:.2f}s), "
            f"wsreplay {r['ws_s']:.2f}s (ratio {r['ratio']:.2f}x, vs dict {r['ratio_dict']:.2f}x; "
            f"load {r['load']:.2f} outages {r['outages']:.2f} uptime {r['uptime']:.2f} "
            f"ack {r['ack_latency']:.2f}), peak {r['ws_mb']:.0f} MB vs {r['arrow_mb']:.0f} MB",
            flush=True,
        )
        if args.old is not None:
            print(
                f"      old tree {r['old_s']:.2f}s, new/old {r['old_ratio']:.2f}x "
                f"(analysis only {r['old_analysis_ratio']:.2f}x, CPU {r['old_cpu_ratio']:.2f}x)",
                flush=True,
            )
    if args.no_write:
        return 0

    big = results[max(results)]
    small = results[min(results)]
    rerun = ".venv/bin/python -m bench.bench_analysis --outposts 60 1000 --repeats 3"
    if args.old is not None:
        rerun = f"mkdir {args.old} && git -C /work/main archive main | tar -x -C {args.old} && {rerun} --old {args.old}"
    lines = [
        f"Rerun: `{rerun}` (captures cached in `{DEFAULT_CACHE}`, made by the simulator on first use; "
        "each 17 M-frame round takes about a minute: run it alone, e.g. under "
        "`flock /work/data/heavy.lock` on a shared machine).",
        "",
        f"One simulated day (virtual time, 10 s HELLO interval, faults on) of {max(results):,} outposts: "
        f"**{big['rows']:,} frames**. wsreplay = `load(columns=columns_for('outages', 'uptime', "
        "'ack_latency'))` + `outages` + `uptime` + `ack_latency` (default parameters, in that order, as a "
        "notebook calls them); pyarrow = `pq.read_table(files, columns=same)`, and pyarrow dict = the same "
        "with `read_dictionary=` the low-cardinality string columns (the cheapest pyarrow read of them, the "
        "fairer baseline: `load` reads them that way too). Each measured in a fresh process, interleaved, "
        f"median of {args.repeats} (ratios: median of the per-round ratios).",
        "",
        "| outposts | frames | pyarrow dict | load | outages | uptime | ack_latency | **analyses / dict read** "
        "| load + analyses | ratio vs pyarrow | ratio vs dict | CPU ratio vs dict | peak RSS wsreplay "
        "| peak RSS pyarrow |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, r in results.items():
        lines.append(
            f"| {n:,} | {r['rows']:,} | {r['arrow_dict_s']:.2f} s | {r['load']:.2f} s | {r['outages']:.2f} s "
            f"| {r['uptime']:.2f} s | {r['ack_latency']:.2f} s | **{r['analyses_ratio_dict']:.2f}x** "
            f"| {r['ws_s']:.2f} s | {r['ratio']:.2f}x | {r['ratio_dict']:.2f}x | {r['cpu_ratio_dict']:.2f}x "
            f"| {r['ws_mb']:,.0f} MB | {r['arrow_mb']:,.0f} MB |"
        )

    def verdict(x: float, target: float) -> str:
        return f"**met** ({x:.2f}x <= {target}x)" if x <= target else f"**missed** ({x:.2f}x > {target}x)"

    lines += [
        "",
        "`uptime` after `outages` with the same parameters on the same frames reuses its timeline "
        "(`wsreplay/analysis/_cache.py`), and `ack_latency` the outpost rows `outages` read, so `outages` "
        "carries the shared costs: reading the columns into arrays and the timeline.",
        "",
        f"**DuckDB side by side** (same files, same run, {big['duck_threads']} threads = all cores, as the "
        "pyarrow reads use): the per-instance HELLO gaps (`LAG(ts) OVER (PARTITION BY instance_uuid ORDER BY "
        "ts)`) and the frame-to-ACK `ASOF LEFT JOIN` per connection, each materialised as an Arrow table "
        "(queries in `bench/bench_analysis.py`: `DUCKDB_GAPS`, `DUCKDB_ASOF`). wsreplay's side is "
        "`load` + the three analyses, which compute more (expected intervals, the outage timeline and "
        "causes, uptime; pairing that stops at the connection's next frame).",
        "",
        "| outposts | frames | DuckDB gaps | DuckDB ASOF | DuckDB total | wsreplay load + analyses "
        "| **wsreplay / DuckDB** | HELLOs (DuckDB) | answered (DuckDB / wsreplay) | peak RSS DuckDB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, r in results.items():
        lines.append(
            f"| {n:,} | {r['rows']:,} | {r['duck_gaps_s']:.2f} s | {r['duck_asof_s']:.2f} s | {r['duck_s']:.2f} s "
            f"| {r['ws_s']:.2f} s | **{r['duck_ratio']:.2f}x** | {r['duck_hellos']:,} "
            f"| {r['duck_acks']:,} / {r['acks']:,} | {r['duck_mb']:,.0f} MB |"
        )
    lines += [
        "",
        "**`load()` of every column** next to a bare read of every column (`pq.read_table(files)`, and with "
        "`read_dictionary=` the low-cardinality string columns):",
        "",
        "| outposts | frames | pyarrow | pyarrow dict | load() | **load / pyarrow** | load / pyarrow dict "
        "| peak RSS load | peak RSS pyarrow |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, r in results.items():
        lines.append(
            f"| {n:,} | {r['rows']:,} | {r['arrow_all_s']:.2f} s | {r['arrow_all_dict_s']:.2f} s "
            f"| {r['load_all_s']:.2f} s | **{r['load_all_ratio']:.2f}x** | {r['load_all_ratio_dict']:.2f}x "
            f"| {r['load_all_mb']:,.0f} MB | {r['arrow_all_mb']:,.0f} MB |"
        )
    lines += [
        "",
        f"Targets of issue #13 at {big['rows']:,} frames: the three analyses within 1.5x the dictionary read "
        f"of their columns: {verdict(big['analyses_ratio_dict'], 1.5)}; `load` + analyses at most 0.5x "
        f"DuckDB: {verdict(big['duck_ratio'], 0.5)}; `load()` of every column within 1x a bare read of "
        f"every column: {verdict(big['load_all_ratio'], 1.0)} (vs the dictionary read: "
        f"{big['load_all_ratio_dict']:.2f}x). Memory a process touches for the first time is expensive on "
        "this machine (see the readings below): absolute times swing between runs, compare within a row.",
        "",
        "CPU ratio: user + system CPU seconds of the wsreplay process over those of the pyarrow dict "
        "read (pyarrow reads on both cores; the analyses' C kernels cut passes of over a million rows into "
        "one part per core, the rest runs on one).",
        "",
        f"Columns read: `{', '.join(_columns())}`. A process that only imports wsreplay peaks at "
        f"{imports_mb:.0f} MB (included in the RSS figures).",
    ]
    if len(results) > 1:
        grow_rows = big["rows"] / small["rows"]  # type: ignore[operator]
        grow_time = big["ws_s"] / small["ws_s"]  # type: ignore[operator]
        grow_mem = (big["ws_mb"] - imports_mb) / max(1.0, small["ws_mb"] - imports_mb)  # type: ignore[operator]
        lines += [
            "",
            f"Growth from {small['rows']:,} to {big['rows']:,} frames ({grow_rows:.1f}x): wsreplay time "
            f"{grow_time:.1f}x, memory above the import baseline {grow_mem:.1f}x; per frame "
            f"{small['ws_s'] / small['rows'] * 1e9:.0f} ns at the small end, "
            f"{big['ws_s'] / big['rows'] * 1e9:.0f} ns at the large end (counting sorts on group codes, "
            "running maxima and one backward pass per connection, in C or numpy: linear in frames, no Python "
            "loop per frame).",
        ]
    if args.old is not None:
        lines += [
            "",
            f"**Old and new side by side** (same run, same files, interleaved; old = `PYTHONPATH={args.old}` "
            "with the same venv: the tree of `main` before this work). Ratios are medians of the per-round "
            "ratios (so they need not match the ratio of the median times); CPU = user + system seconds of "
            "the whole process (load included), the steadier figure on this shared machine. The results "
            "must be the same: outage rows, uptime rows and answered ACKs are printed for both.",
            "",
            "| outposts | frames | old total | new total | **new / old** | new / old, analyses only "
            "| new / old, CPU | outages old / new | uptime old / new | ack_latency old / new "
            "| outage rows old / new | uptime rows old / new | answered ACKs old / new |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for n, r in results.items():
            lines.append(
                f"| {n:,} | {r['rows']:,} | {r['old_s']:.2f} s | {r['ws_s']:.2f} s | **{r['old_ratio']:.2f}x** "
                f"| {r['old_analysis_ratio']:.2f}x | {r['old_cpu_ratio']:.2f}x "
                f"| {r['old_outages']:.2f} / {r['outages']:.2f} s | {r['old_uptime']:.2f} / {r['uptime']:.2f} s "
                f"| {r['old_ack_latency']:.2f} / {r['ack_latency']:.2f} s "
                f"| {r['old_outage_rows']:,} / {r['outage_rows']:,} | {r['old_instances']:,} / {r['instances']:,} "
                f"| {r['old_acks']:,} / {r['acks']:,} |"
            )
    write_section("Analysis", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
