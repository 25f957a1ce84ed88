"""Regenerate the sample captures: ``.venv/bin/python sample_captures/make_samples.py [--only NAME]``.

``fleet_day`` and ``incident`` are simulated in virtual time (``simulate_virtual``)
from the fixed scenarios below: the same code makes the same rows, byte for
byte in content. ``recorded`` is a short real-time run of a simulated fleet
against the mock authentik through the real recording proxy (``Recorder``): its
structure is the same on every run, its timestamps are not. Each directory gets
``truth.json``: the outages the simulation injected (outpost level), to compare
the analysis with. See README.md for what is in each and what to find there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

from wsreplay import load
from wsreplay.sim import Fault, Notice, OutpostSpec, Scenario, Truth, simulate_virtual
from wsreplay.sim.scenario_gen import random_uuid

HERE = Path(__file__).resolve().parent
DAY = 86_400.0


def _fleet(n: int, seed: int, versions: tuple[str, ...] = ("2024.2.1", "2024.4.2")) -> list[OutpostSpec]:
    import numpy as np

    rng = np.random.default_rng(seed)
    return [
        OutpostSpec(random_uuid(rng), f"sample-{seed}-{i}", replicas=2 if i % 8 == 0 else 1,
                    version=versions[i % len(versions)], name=f"outpost-{i:02d}")
        for i in range(n)
    ]  # fmt: skip


def fleet_day() -> Scenario:
    """24 outposts for a day at authentik's 10 s HELLO interval; three outages, an upgrade, a latency spike."""
    specs = _fleet(24, seed=11)
    pk = [s.pk for s in specs]
    h = 3600.0
    return Scenario(
        outposts=specs,
        duration=DAY,
        interval=10.0,
        jitter=0.05,
        ack_latency=0.004,
        faults=[
            Fault("disconnect", pk[3], at=3 * h + 120, duration=240.0),  # network drop, ~4 min + backoff
            Fault("silent", pk[7], at=9 * h + 600, duration=180.0),  # hung process, 3 min
            Fault("restart", pk[12], at=14 * h + 30, duration=25.0),  # process restart, new instance
            Fault("upgrade", pk[5], at=17 * h, duration=40.0, version="2024.6.0"),  # restart into a new version
            Fault("latency_spike", None, at=20 * h, duration=900.0, delay=0.35),  # slow ACKs for 15 min
        ],
        browsers=2,
        notices=[
            Notice(2 * h, "Outpost configuration saved", "success"),
            Notice(3 * h + 200, "Outpost outpost-03 is not reachable", "warning"),
            Notice(17 * h + 10, "Outpost outpost-05 upgraded to 2024.6.0", "info"),
            Notice(20 * h + 60, "Slow responses from the database", "error"),
        ],
        seed=11,
    )


def incident() -> Scenario:
    """40 outposts for 30 minutes around a server restart (every socket closed with 1012, 45 s down)."""
    specs = _fleet(40, seed=23)
    return Scenario(
        outposts=specs,
        duration=1800.0,
        interval=10.0,
        ack_latency=0.003,
        faults=[
            Fault("server_restart", None, at=900.0, duration=45.0),
            Fault("disconnect", specs[9].pk, at=300.0, duration=60.0),  # an unrelated blip before it
        ],
        browsers=3,
        notices=[
            Notice(890.0, "authentik is restarting for maintenance", "warning"),
            Notice(1000.0, "authentik is back", "success"),
        ],
        seed=23,
    )


def recorded_scenario() -> Scenario:
    """4 outposts, 0.5 s interval, 20 s: a disconnect and a restart, recorded through the proxy."""
    specs = _fleet(4, seed=31)
    return Scenario(
        outposts=specs,
        duration=20.0,
        interval=0.5,
        ack_latency=0.002,
        faults=[
            Fault("disconnect", specs[1].pk, at=6.0, duration=3.0),
            Fault("restart", specs[2].pk, at=12.0, duration=1.0),
        ],
        browsers=1,
        notices=[Notice(10.0, "hello from the sample", "info")],
        seed=31,
    )


def _truth_json(truth: Truth, path: Path) -> None:
    out = truth.outages[truth.outages["level"] == "outpost"]
    records: list[dict[str, Any]] = [
        {
            "outpost_uuid": r.outpost_uuid,
            "start": r.start.isoformat(),
            "end": r.end.isoformat(),
            "duration_s": round(float(r.duration_s), 3),
            "cause": r.cause,
        }
        for r in out.sort_values("start").itertuples()
    ]
    doc = {"start": truth.start.isoformat(), "end": truth.end.isoformat(), "scenario": truth.scenario,
           "outpost_outages": records}  # fmt: skip
    path.write_text(json.dumps(doc, indent=1) + "\n")


def make_virtual(name: str, scenario: Scenario) -> Path:
    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    truth = simulate_virtual(scenario, out, save_truth=False, segment_rows=10_000_000)
    _truth_json(truth, out / "truth.json")
    return out


async def _record(scenario: Scenario, out: Path) -> Truth:
    from wsreplay.record import Recorder
    from wsreplay.sim import MockAuthentik, run_fleet_async

    async with MockAuthentik(outposts=scenario.tokens, ack_latency=scenario.ack_latency) as ak:
        async with Recorder(ak.url, out=out, flush_interval=0.5) as rec:
            return await run_fleet_async(scenario, rec.url, mock=ak)


def make_recorded() -> Path:
    out = HERE / "recorded"
    shutil.rmtree(out, ignore_errors=True)
    truth = asyncio.run(_record(recorded_scenario(), out))
    _truth_json(truth, out / "truth.json")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("fleet_day", "incident", "recorded"))
    args = parser.parse_args()
    made = []
    if args.only in (None, "fleet_day"):
        made.append(make_virtual("fleet_day", fleet_day()))
    if args.only in (None, "incident"):
        made.append(make_virtual("incident", incident()))
    if args.only in (None, "recorded"):
        made.append(make_recorded())
    for p in made:
        size = sum(f.stat().st_size for f in p.iterdir())
        n = len(load(p, columns=["ts"]))
        print(f"{p.name:<10} {n:>9,} frames  {size / 1e6:6.2f} MB")


if __name__ == "__main__":
    main()
