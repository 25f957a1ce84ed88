"""Live and offline agree: a real-time faulty fleet through a recorder with metrics, scraped over HTTP.

The periods in which the scraped ``wsreplay_outpost_up`` was 0 are the outages that
``wsreplay.outages(level="outpost")`` finds in the capture afterwards, within one scrape
interval, and both match what the simulator did (its truth).
"""

from __future__ import annotations

import asyncio
import time

import pandas as pd
import pytest
from metrics_support import by_label, scrape

import wsreplay
from wsreplay.record import Recorder
from wsreplay.sim import Fault, OutpostSpec, Scenario, run_fleet_async

A, B, C, D = (f"00000000-0000-4000-8000-0000000000a{i}" for i in range(4))
TOKENS = {pk: f"tok-{i}" for i, pk in enumerate((A, B, C, D))}
SCRAPE_S = 0.2
INTERVAL = 0.3

pytestmark = pytest.mark.slow


def _scenario() -> Scenario:
    return Scenario(
        outposts=[*(OutpostSpec(pk, TOKENS[pk]) for pk in (A, B, C)), OutpostSpec(D, TOKENS[D], replicas=2)],
        duration=7.0,
        interval=INTERVAL,
        jitter=0.0,
        ack_latency=0.001,
        faults=[
            Fault("disconnect", A, at=1.5, duration=1.5),
            Fault("silent", B, at=2.0, duration=2.0),
            Fault("restart", C, at=3.5, duration=1.2),
            Fault("disconnect", D, at=2.0, duration=1.5, replica=0),  # the other replica keeps D up
        ],
        seed=3,
    )


def _intervals(df: pd.DataFrame, pk: str) -> list[tuple[int, int]]:
    rows = df[df.outpost_uuid == pk]
    return list(zip(rows.start.astype("int64"), rows.end.astype("int64")))


def _covered(t: int, spans: list[tuple[int, int]], tol: int) -> bool:
    return any(s - tol <= t <= e + tol for s, e in spans)


def test_outpost_up_was_zero_exactly_during_the_outages_found_offline_and_in_the_truth(tmp_path):
    samples: list[tuple[int, dict[str, float]]] = []

    async def scraper(base: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            t0 = time.time_ns()
            fams = await asyncio.to_thread(scrape, base)
            t1 = time.time_ns()
            samples.append(((t0 + t1) // 2, by_label(fams, "wsreplay_outpost_up", "outpost")))
            await asyncio.sleep(SCRAPE_S)

    async def main():
        from record_support import mock

        async with mock(outposts=TOKENS) as ak:
            async with Recorder(ak.url, out=tmp_path / "cap", flush_interval=0.05, metrics="127.0.0.1:0") as rec:
                stop = asyncio.Event()
                task = asyncio.ensure_future(scraper(rec.metrics_url, stop))
                truth = await run_fleet_async(_scenario(), rec.url, mock=ak)
                stop.set()
                await task
        return truth

    truth = asyncio.run(main())
    frames = wsreplay.load(tmp_path / "cap")
    offline = wsreplay.outages(frames, level="outpost")
    real = truth.outages[truth.outages.level == "outpost"]
    end = truth.end.value - int(0.3e9)  # the fleet shuts down at its end: leave that out
    tol = int(SCRAPE_S * 1e9)
    checked = zeros = 0
    for pk in (A, B, C, D):
        off, tru = _intervals(offline, pk), _intervals(real, pk)
        got = [(t, up[pk]) for t, up in samples if pk in up and t < end]
        assert len(got) > 20, pk
        for t, up in got:
            checked += 1
            if up == 0:
                zeros += 1
                assert _covered(t, off, tol), (pk, t, "0 outside the offline outages")
                assert _covered(t, tru, tol), (pk, t, "0 outside the simulator's outages")
            else:
                assert not any(s + tol < t < e - tol for s, e in off), (pk, t, "1 inside an offline outage")
        # every outage long enough to be scraped was seen as 0, and the simulator's too
        for spans in (off, tru):
            for s, e in spans:
                if e - s > 2 * tol and e < end:
                    assert any(up == 0 and s - tol <= t <= e + tol for t, up in got), (pk, s, e)
    before_end = offline[offline.end.astype("int64") < end]
    assert sorted({pk for pk in (A, B, C, D) if _intervals(before_end, pk)}) == sorted([A, B, C])
    assert zeros >= 10 and checked > 80
