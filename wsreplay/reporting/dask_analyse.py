"""What the report shows, computed on a Dask cluster: ``wsreplay.report(capture, engine="dask")``.

The capture is read as :func:`wsreplay.dask.load` partitions it (buckets of
outposts, plus the rows without an outpost). Each partition is analysed on
its worker in one go, over the capture's window, exactly as
:func:`wsreplay.reporting.analyse.analyse_capture` analyses one outpost group
(outages, uptime, inventory, restarts, per-outpost latency, fan-out, parse
errors, summary); only these small tables and one ``(sent_ts, latency_s)`` per
frame (for the fleet-wide percentiles, which are exact only over every
latency) come back to the client, which combines them as the grouped pandas
report does. The browser notices are all in the partition of rows without an
outpost. Like the grouped report, the HELLO interval histogram (one value per
HELLO) is left out.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..analysis import (
    ack_latency,
    fleet,
    latency_percentiles,
    notice_frequency,
    outages,
    parse_errors,
    restarts,
    top_messages,
    trigger_fanout,
    uptime,
)
from ..analysis.coverage import coverage_levels
from ..summary import CaptureSummary, summarize
from .analyse import REPORT_COLUMNS, Parts, Step, _fleet_latency, _freq, _merge_summaries

__all__ = ["analyse_dask", "PartitionParts"]


@dataclass
class PartitionParts:
    """The report's tables of one partition (computed on a worker)."""

    summary: CaptureSummary
    captures: frozenset[str]
    outages: pd.DataFrame
    instance_outages: int
    uptime: pd.DataFrame
    fleet: pd.DataFrame
    restarts: pd.DataFrame
    per_outpost: pd.DataFrame
    latency: pd.DataFrame
    fanout: pd.DataFrame
    errors: pd.DataFrame | None
    client: pd.DataFrame


def partition_parts(frames: pd.DataFrame, opts: dict[str, Any]) -> PartitionParts:
    """Every per-outpost part of the report for one partition (*opts* carry the capture's ``span``)."""
    s = summarize(frames)
    lat = ack_latency(frames)
    ids: list[str] = []
    if "capture_id" in frames.columns:
        ids = [str(x) for x in frames["capture_id"].dropna().unique()]
    client = frames.loc[(frames["endpoint"].astype("str") == "client").to_numpy()]
    coverage_levels(frames, ("outpost", "instance"), **opts)  # both timelines at once: they share a phase
    return PartitionParts(
        summary=s,
        captures=frozenset(ids),
        outages=outages(frames, level="outpost", **opts),
        instance_outages=len(outages(frames, level="instance", **opts)),
        uptime=uptime(frames, level="outpost", **opts),
        fleet=fleet(frames, level="outpost"),
        restarts=restarts(frames),
        per_outpost=latency_percentiles(lat, by="outpost_uuid"),
        latency=pd.DataFrame({"sent_ts": lat["sent_ts"], "latency_s": lat["latency_s"]}),
        fanout=trigger_fanout(frames),
        errors=parse_errors(frames) if s.parse_errors else None,
        client=client,
    )


def _cat(frames: Sequence[pd.DataFrame], by: str | list[str]) -> pd.DataFrame:
    from ..daskengine.combine import concat_results, sort_rows

    return sort_rows(concat_results(frames, keep_categories=("cause",)), [by] if isinstance(by, str) else by)


def analyse_dask(capture: Any, opts: dict[str, Any], *, step: Step) -> Parts:
    """Every part of the report from a capture path/URL or a :func:`wsreplay.dask.load` frame, on Dask."""
    import dask

    from ..dask import load as dask_load
    from ..daskengine.window import frame_window

    with step("load"):
        frames = capture if not isinstance(capture, (str, os.PathLike)) else dask_load(capture, REPORT_COLUMNS)
        window = frame_window(frames)
    span = None
    if window is not None:
        span = (pd.Timestamp(window[0], unit="ns", tz="UTC"), pd.Timestamp(window[1], unit="ns", tz="UTC"))
    with step(f"outposts ({frames.npartitions} partitions)"):
        tasks = [dask.delayed(partition_parts, pure=True)(p, {**opts, "span": span}) for p in frames.to_delayed()]
        parts: list[PartitionParts] = list(dask.compute(*tasks))
    captures = frozenset().union(*(p.captures for p in parts))
    summary = _merge_summaries([p.summary for p in parts], len(captures))
    with step("latency"):
        pieces = [p.latency for p in parts]  # one per partition, never concatenated: see reporting.analyse
        overall, over_time = _fleet_latency(pieces, summary)
    with step("notices"):
        client = _cat([p.client for p in parts], ["ts"])
        nfreq = _freq(summary)
        notices = notice_frequency(client, freq=nfreq)
        top = top_messages(client, n=20)
    errs = [p.errors for p in parts if p.errors is not None]
    errors = None
    if errs:
        errors = _cat(errs, "first_seen").sort_values("frames", ascending=False, kind="stable", ignore_index=True)
    return Parts(
        summary=summary,
        outages=_cat([p.outages for p in parts], ["start", "outpost_uuid"]),
        instance_outages=sum(p.instance_outages for p in parts),
        uptime=_cat([p.uptime for p in parts], "outpost_uuid"),
        fleet=_cat([p.fleet for p in parts], "outpost_uuid"),
        restarts=_cat([p.restarts for p in parts], ["ts", "outpost_uuid"]),
        latency=pieces,
        overall=overall,
        over_time=over_time,
        per_outpost=_cat([p.per_outpost for p in parts], "outpost_uuid"),
        hello=None,
        notices=notices,
        notice_freq=nfreq,
        top_notices=top,
        fanout=_cat([p.fanout for p in parts], ["push_ts", "outpost_uuid", "delay_s"]),
        errors=errors,
        chunks=frames.npartitions,
    )
