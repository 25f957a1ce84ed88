"""``wsreplay demo``: a mock authentik, a simulated fleet with faults, the real recorder, the HTML report.

Everything runs on 127.0.0.1: the mock authentik serves the outposts' and
browsers' WebSockets, the recording proxy sits in front of it, and the
simulated fleet (:func:`wsreplay.sim.run_fleet_async`) connects through the proxy
while scripted faults knock outposts over. The capture, the simulator's
ground truth and the report end up in ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..exceptions import ConfigurationError

__all__ = ["register", "run", "demo_scenario", "run_demo", "match_outages"]


def demo_scenario(duration: float = 60.0, *, outposts: int = 6, interval: float = 1.0, seed: int = 7) -> Any:
    """The demo fleet: *outposts* outposts (the first with two replicas) and one fault of each kind.

    Faults are placed at fixed fractions of *duration*, so a run of any length
    shows them all: a network drop, a hung process, a restart, an upgrade, a
    server restart (every connection closed with 1012) and an ACK latency spike.
    """
    from ..sim import Fault, Notice, OutpostSpec, Scenario
    from ..sim.scenario_gen import random_uuid

    if outposts < 4:
        raise ConfigurationError("the demo needs at least 4 outposts (one per outpost fault)")
    if duration < 10 * interval:
        raise ConfigurationError(f"--duration must be at least 10 intervals ({10 * interval:g} s)")
    import numpy as np

    rng = np.random.default_rng(seed)
    specs = [
        OutpostSpec(random_uuid(rng), f"demo-token-{i}-{seed}", replicas=2 if i == 0 else 1, name=f"outpost-{i}")
        for i in range(outposts)
    ]
    d, pk = duration, [s.pk for s in specs]
    faults = [
        Fault("disconnect", pk[1], at=0.15 * d, duration=max(0.12 * d, 4 * interval)),
        Fault("silent", pk[2], at=0.30 * d, duration=max(0.10 * d, 4 * interval)),
        Fault("restart", pk[3], at=0.45 * d, duration=max(0.04 * d, 2 * interval)),
        Fault("upgrade", pk[0], at=0.55 * d, duration=max(0.04 * d, 2 * interval), replica=1, version="2024.4.2"),
        Fault("latency_spike", None, at=0.62 * d, duration=0.08 * d, delay=0.15),
        Fault("server_restart", None, at=0.75 * d, duration=max(0.05 * d, 2 * interval)),
    ]
    notices = [
        Notice(0.10 * d, "Outpost configuration saved", "success"),
        Notice(0.47 * d, "Outpost outpost-3 restarted", "warning"),
        Notice(0.76 * d, "authentik is restarting", "error"),
        Notice(0.90 * d, "Welcome back", "info"),
    ]
    return Scenario(
        outposts=specs,
        duration=float(duration),
        interval=interval,
        jitter=0.05,
        ack_latency=0.002,
        faults=faults,
        browsers=2,
        notices=notices,
        seed=seed,
    )


async def _record(scenario: Any, capture: Path, flush_interval: float) -> Any:
    from ..record import Recorder
    from ..sim import MockAuthentik, run_fleet_async

    async with MockAuthentik(outposts=scenario.tokens, ack_latency=scenario.ack_latency) as ak:
        async with Recorder(ak.url, out=capture, flush_interval=flush_interval) as rec:

            async def pushes() -> None:
                # configuration changes: TRIGGER_UPDATE to every connection of the two-replica outpost
                for frac in (0.25, 0.85):
                    await asyncio.sleep(frac * scenario.duration - (asyncio.get_running_loop().time() - t0))
                    await ak.push_trigger_update(scenario.outposts[0].pk)

            t0 = asyncio.get_running_loop().time()
            push_task = asyncio.create_task(pushes())
            try:
                truth = await run_fleet_async(scenario, rec.url, mock=ak)
            finally:
                push_task.cancel()
                await asyncio.gather(push_task, return_exceptions=True)
    return truth


def run_demo(
    out: str | Path,
    *,
    duration: float = 60.0,
    outposts: int = 6,
    interval: float = 1.0,
    seed: int = 7,
    progress: bool = False,
) -> dict[str, Any]:
    """Record the demo fleet through the real recorder for *duration* seconds and write the report.

    Returns a dict with ``capture``, ``truth`` (directory), ``report`` (path),
    the frames' ``outages`` (outpost level), ``truth_outages`` and ``latency``
    (fleet percentiles).
    """
    from .. import latency_percentiles, load, outages
    from ..jupyter import timed_progress
    from ..reporting import report

    out = Path(out)
    capture = out / "capture"
    if capture.exists() and any(capture.iterdir()):
        raise ConfigurationError(f"{capture} already holds a capture; pass another --out")
    scenario = demo_scenario(duration, outposts=outposts, interval=interval, seed=seed)
    with timed_progress(duration, desc="recording the demo fleet", enabled=progress):
        truth = asyncio.run(_record(scenario, capture, flush_interval=interval))
    truth.save(out / "truth")
    frames = load(capture)
    # the run ends at truth.end; the fleet's clean shutdown right after it is not an outage
    found = outages(frames, level="outpost", end=truth.end)
    title = f"wsreplay demo: {len(scenario.outposts)} simulated outposts recorded for {duration:g} s"
    rep = report(frames, title=title, end=truth.end)
    path = rep.save(out / "report.html")
    expected = truth.outages[truth.outages["level"] == "outpost"]
    return {
        "capture": capture,
        "truth": out / "truth",
        "report": path,
        "outages": found,
        "truth_outages": expected,
        "latency": latency_percentiles(frames, by=None),
        "outposts": int(frames["outpost_uuid"].nunique()),
    }


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="record a simulated fleet with faults through the recorder and write the report")
    p.add_argument("--duration", type=float, default=60.0, help="seconds to record (default 60)")
    p.add_argument("--out", help="output directory (default: ./wsreplay-demo-<time>)")
    p.add_argument("--outposts", type=int, default=6, help="outposts in the fleet (default 6)")
    p.add_argument("--interval", type=float, default=1.0, help="HELLO interval in seconds (default 1)")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(run=run)


def _summary(result: dict[str, Any]) -> str:
    found: pd.DataFrame = result["outages"]
    truth: pd.DataFrame = result["truth_outages"]
    lat = result["latency"].iloc[0] if len(result["latency"]) else None
    lines = [
        f"report:   {result['report']}",
        f"capture:  {result['capture']}   (truth: {result['truth']})",
        f"outposts: {result['outposts']}",
        f"outages:  {len(found)} found in the capture, {len(truth)} injected by the simulation",
        "  injected (truth)                             found in the capture (wsreplay.outages)",
    ]
    for row in match_outages(found, truth).to_dict("records"):
        injected = f"{row['start_truth']:%H:%M:%S.%f}"[:-3] + f" {row['duration_truth']:5.1f} s "
        injected += f"{row['cause_truth']!s:<15}"
        if pd.isna(row["start_found"]):
            got = "not found"
        else:
            got = f"{row['start_found']:%H:%M:%S.%f}"[:-3] + f" {row['duration_found']:5.1f} s {row['cause_found']}"
        lines.append(f"  {str(row['outpost_uuid'])[:8]} {injected} {got}")
    if lat is not None:
        lines.append(
            f"ACK latency: p50 {lat['p50_s'] * 1e3:.1f} ms, p90 {lat['p90_s'] * 1e3:.1f} ms, "
            f"p99 {lat['p99_s'] * 1e3:.1f} ms over {int(lat['frames']):,} frames ({int(lat['unanswered'])} never ACKed)"
        )
    return "\n".join(lines)


def match_outages(found: pd.DataFrame, truth: pd.DataFrame, *, within: float = 5.0) -> pd.DataFrame:
    """Pair each injected outage (truth, outpost level) with the found outage of its outpost starting nearest.

    Returns one row per truth outage: ``outpost_uuid``, ``start_truth``,
    ``duration_truth``, ``cause_truth``, ``start_found``, ``duration_found``,
    ``cause_found`` (NaT/NaN when nothing started within *within* seconds).
    """
    rows: list[dict[str, Any]] = []
    used: set[Any] = set()
    starts = found["start"]
    for t in truth.sort_values("start").to_dict("records"):
        mask = (found["outpost_uuid"] == t["outpost_uuid"]) & ~found.index.isin(list(used))
        gap = (starts[mask] - t["start"]).abs()
        best: Any = gap.idxmin() if len(gap) and gap.min() <= pd.Timedelta(seconds=within) else None
        row: dict[str, Any] = {
            "outpost_uuid": t["outpost_uuid"],
            "start_truth": t["start"],
            "duration_truth": t["duration_s"],
            "cause_truth": t["cause"],
            "start_found": pd.NaT,
            "duration_found": float("nan"),
            "cause_found": None,
        }
        if best is not None:
            used.add(best)
            row["start_found"] = found.at[best, "start"]
            row["duration_found"] = found.at[best, "duration_s"]
            row["cause_found"] = str(found.at[best, "cause"])
        rows.append(row)
    return pd.DataFrame(rows)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out or f"wsreplay-demo-{datetime.now(UTC):%Y%m%d-%H%M%S}")
    print(
        f"wsreplay demo: recording {args.outposts} simulated outposts through the recorder for {args.duration:g} s "
        f"(mock authentik on 127.0.0.1) ...",
        file=sys.stderr,
    )
    result = run_demo(
        out,
        duration=args.duration,
        outposts=args.outposts,
        interval=args.interval,
        seed=args.seed,
        progress=sys.stderr.isatty(),
    )
    print(_summary(result))
    return 0
