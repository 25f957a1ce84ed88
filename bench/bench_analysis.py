"""Analysis benchmark: one simulated day of a 1,000-outpost fleet, load + outages + uptime + ack_latency.

Figures, all taken in one run on the same files:

* the time of ``wsreplay.load(columns=...)`` + ``outages`` + ``uptime`` +
  ``ack_latency`` divided by the time pyarrow needs to read the same columns
  (``pq.read_table(files, columns=...)``), each measured in a fresh process,
  interleaved, median of ``--repeats``;
* the peak resident memory of each (``ru_maxrss`` of the measuring process,
  next to that of a process that only imports wsreplay);
* how both grow from about 1 M to about 17 M frames.

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


def worker(mode: str, path: Path) -> dict[str, object]:
    """Measure one mode in this process; returns timings (s), rows and peak RSS (MB)."""
    import wsreplay

    cols = _columns()
    base = _peak_mb()
    if mode == "imports":
        return {"peak_mb": base}
    if mode in ("pyarrow", "pyarrow-dict"):
        from wsreplay.schema import CATEGORICAL_COLUMNS

        dicts = [c for c in cols if c in CATEGORICAL_COLUMNS] if mode == "pyarrow-dict" else None
        c0, t0 = _cpu(), time.perf_counter()
        table = pq.read_table(_files(path), columns=cols, read_dictionary=dicts)
        t1 = time.perf_counter()
        return {"total": t1 - t0, "cpu": _cpu() - c0, "rows": table.num_rows, "peak_mb": _peak_mb()}
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


def measure(path: Path, repeats: int, old: Path | None = None) -> dict[str, object]:
    arrow, arrow_dict, ws, was = [], [], [], []
    for _ in range(repeats):
        arrow.append(_run("pyarrow", path))
        arrow_dict.append(_run("pyarrow-dict", path))
        ws.append(_run("wsreplay", path))
        if old is not None:
            was.append(_run("wsreplay", path, old))

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(float(r[key]) for r in runs)

    res: dict[str, object] = {
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
        res["acks"] = ws[0]["acks"]
    res["ratio"] = statistics.median(res["ratios"])  # type: ignore[arg-type]
    res["ratio_dict"] = statistics.median(res["ratios_dict"])  # type: ignore[arg-type]
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--outposts", type=int, nargs="+", default=[60, 250, 500, 1000])
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
    lines = [
        "Rerun: `.venv/bin/python -m bench.bench_analysis` (captures cached in "
        f"`{DEFAULT_CACHE}`; `--outposts 60 1000 --repeats 5` to change the sizes).",
        "",
        f"One simulated day (virtual time, 10 s HELLO interval, faults on) of {max(results):,} outposts: "
        f"**{big['rows']:,} frames**. wsreplay = `load(columns=columns_for('outages', 'uptime', "
        "'ack_latency'))` + `outages` + `uptime` + `ack_latency`; pyarrow = `pq.read_table(files, columns=same)`, "
        "and pyarrow dict = the same with `read_dictionary=` the low-cardinality string columns (the cheapest "
        "pyarrow read of them, the fairer baseline: `load` reads them that way too). "
        f"Each measured in a fresh process, interleaved, median of {args.repeats} (ratios: median of the "
        "per-round ratios).",
        "",
        "| outposts | frames | pyarrow | pyarrow dict | wsreplay total | **ratio vs pyarrow** | **ratio vs dict** "
        "| CPU ratio vs dict | load | outages | uptime | ack_latency | peak RSS wsreplay | peak RSS pyarrow |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, r in results.items():
        lines.append(
            f"| {n:,} | {r['rows']:,} | {r['arrow_s']:.2f} s | {r['arrow_dict_s']:.2f} s | {r['ws_s']:.2f} s "
            f"| **{r['ratio']:.2f}x** | **{r['ratio_dict']:.2f}x** | {r['cpu_ratio_dict']:.2f}x "
            f"| {r['load']:.2f} s | {r['outages']:.2f} s | {r['uptime']:.2f} s | {r['ack_latency']:.2f} s "
            f"| {r['ws_mb']:,.0f} MB | {r['arrow_mb']:,.0f} MB |"
        )
    grow_rows = big["rows"] / small["rows"]  # type: ignore[operator]
    grow_time = big["ws_s"] / small["ws_s"]  # type: ignore[operator]
    grow_mem = (big["ws_mb"] - imports_mb) / max(1.0, small["ws_mb"] - imports_mb)  # type: ignore[operator]

    def verdict(x: float) -> str:
        return "within" if x <= 3 else "over"

    lines += [
        "",
        f"Target of the issue (within 3x of pyarrow reading the same columns), at {big['rows']:,} frames: "
        f"{verdict(big['ratio'])} it against the plain read ({big['ratio']:.2f}x), "
        f"{verdict(big['ratio_dict'])} it against the dictionary read ({big['ratio_dict']:.2f}x wall, "
        f"{big['cpu_ratio_dict']:.2f}x CPU). Of the wsreplay time, `load` alone is "
        f"{big['load'] / big['ws_s'] * 100:.0f} %; the three analyses take "
        f"{(big['ws_s'] - big['load']) / big['arrow_dict_s']:.1f}x the dictionary read. "
        "This machine is shared and its page faults are expensive (system time is a large part of every "
        "figure): wall times swing by 2-5x between runs, so compare within a row.",
        "",
        "CPU ratio: user + system CPU seconds of the wsreplay process over those of the pyarrow dict "
        "read (pyarrow reads on both cores; the analysis runs on one).",
        "",
        f"Columns read: `{', '.join(_columns())}`. A process that only imports wsreplay peaks at "
        f"{imports_mb:.0f} MB (included in the RSS figures).",
        "",
        f"Growth from {small['rows']:,} to {big['rows']:,} frames ({grow_rows:.1f}x): wsreplay time "
        f"{grow_time:.1f}x, memory above the import baseline {grow_mem:.1f}x; per frame "
        f"{small['ws_s'] / small['rows'] * 1e9:.0f} ns at the small end, {big['ws_s'] / big['rows'] * 1e9:.0f} ns "
        "at the large end (the work is radix sorts on 16-bit group codes, running sums and maxima: "
        "linear in frames, no Python loop per frame).",
    ]
    if args.old is not None:
        lines += [
            "",
            f"**Old and new side by side** (same run, same files, interleaved; old = `PYTHONPATH={args.old}` "
            "with the same venv: the tree of 7d4d944, before issue #12's semantics). "
            "Rerun: `mkdir /tmp/old12 && git archive 7d4d944 | tar -x -C /tmp/old12 && "
            ".venv/bin/python -m bench.bench_analysis --outposts 60 1000 --repeats 3 --old /tmp/old12`. "
            "Ratios are medians of the per-round ratios (so they need not match the ratio of the median "
            "times); CPU = user + system seconds of the whole process (load included), the steadier "
            "figure on this shared machine.",
            "",
            "| outposts | frames | old total | new total | **new / old** | new / old, analyses only "
            "| new / old, CPU | outages old / new | uptime old / new | ack_latency old / new "
            "| outage rows old / new | answered ACKs old / new |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for n, r in results.items():
            lines.append(
                f"| {n:,} | {r['rows']:,} | {r['old_s']:.2f} s | {r['ws_s']:.2f} s | **{r['old_ratio']:.2f}x** "
                f"| {r['old_analysis_ratio']:.2f}x | {r['old_cpu_ratio']:.2f}x "
                f"| {r['old_outages']:.2f} / {r['outages']:.2f} s | {r['old_uptime']:.2f} / {r['uptime']:.2f} s "
                f"| {r['old_ack_latency']:.2f} / {r['ack_latency']:.2f} s "
                f"| {r['old_outage_rows']:,} / {r['outage_rows']:,} | {r['old_acks']:,} / {r['acks']:,} |"
            )
    write_section("Analysis", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
