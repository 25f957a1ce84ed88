"""What the report shows, computed from a capture: in one go, or outpost group by outpost group.

Outages, uptime, restarts, the inventory and per-outpost latency depend only
on each outpost's own frames, so a capture too large to hold in memory is
analysed in groups of outposts (each group read with ``load(outpost=...)``)
and the per-outpost results are concatenated: the same numbers as one pass.
Every group is judged over the capture's own window (its first and last
event, read from the segments' statistics by
:func:`wsreplay.store.span.capture_span` and passed as ``span=``), never
the group's own: the outposts that died early would otherwise share a group
whose window ends when they died. This is the kernel a partitioned engine
calls too: ``outages(frames_of_some_outposts, span=capture_span(path), ...)``.
Fleet-wide ACK latency percentiles are computed over the
``(sent_ts, latency_s)`` of every group together (bin by bin, without
concatenating them: :func:`wsreplay.analysis.latency.fleet_latency_percentiles`),
so they are exact as well. Only the
HELLO interval histogram (one value per HELLO) is left out above
``hello_limit`` frames.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow.dataset as ds

from .._ahead import ahead
from ..analysis import (
    ack_latency,
    columns_for,
    fleet,
    hello_intervals,
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
from ..analysis.latency import fleet_latency_percentiles
from ..plot._style import auto_freq
from ..schema import COLUMNS, table_to_frames
from ..store import load
from ..store.buckets import NO_BUCKET
from ..store.partition import Partitions, bucket_partitions, capture_rows
from ..store.span import capture_span
from ..summary import CaptureSummary, summarize

__all__ = ["Parts", "REPORT_COLUMNS", "analyse_frames", "analyse_capture"]

_SUMMARY_COLUMNS = {"capture_id", "conn_id", "outpost_uuid", "instance_uuid", "endpoint", "event"}
_SUMMARY_COLUMNS |= {"instruction_name", "message_type", "parse_error"}
#: Capture columns the report reads (the analysis columns plus what the summary counts).
REPORT_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c in set(columns_for()) | _SUMMARY_COLUMNS)
#: Columns read for a group of outposts (no notice text).
_OUTPOST_COLUMNS: tuple[str, ...] = tuple(
    c
    for c in COLUMNS
    if c in set(columns_for("outages", "fleet", "ack_latency", "trigger_fanout", "parse_errors")) | _SUMMARY_COLUMNS
)

Step = Callable[[str], AbstractContextManager[None]]


@dataclass
class Parts:
    """The analysis results a report is made of."""

    summary: CaptureSummary
    outages: pd.DataFrame
    instance_outages: int
    uptime: pd.DataFrame
    fleet: pd.DataFrame
    restarts: pd.DataFrame
    latency: list[pd.DataFrame]  # sent_ts, latency_s: one frame per outpost group, each in time order
    overall: pd.DataFrame
    over_time: pd.DataFrame
    per_outpost: pd.DataFrame
    hello: pd.DataFrame | None
    notices: pd.DataFrame
    notice_freq: str
    top_notices: pd.DataFrame
    fanout: pd.DataFrame
    errors: pd.DataFrame | None
    chunks: int = 1


def _freq(summary: CaptureSummary) -> str:
    return auto_freq(summary.start, summary.end) if summary.start is not None and summary.end is not None else "1min"


def _fleet_latency(pieces: list[pd.DataFrame], summary: CaptureSummary) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fleet's ACK latency percentiles, overall and over time, from every group's latencies."""
    overall = fleet_latency_percentiles(pieces)
    sent = [p["sent_ts"] for p in pieces if len(p)]
    span = (min(s.min() for s in sent), max(s.max() for s in sent)) if sent else (summary.start, summary.end)
    freq = auto_freq(*span) if span[0] is not None and pd.notna(span[0]) else "1min"
    return overall, fleet_latency_percentiles(pieces, freq=freq)


def analyse_frames(frames: pd.DataFrame, opts: dict[str, Any], *, hello_limit: int, step: Step) -> Parts:
    """Every part of the report from frames held in memory."""
    with step("summary"):
        summary = summarize(frames)
    with step("outages"):
        coverage_levels(frames, ("outpost", "instance"), **opts)  # both timelines at once: they share a phase
        out = outages(frames, level="outpost", **opts)
        n_inst = len(outages(frames, level="instance", **opts))
        up = uptime(frames, level="outpost", **opts)
    with step("fleet"):
        inv = fleet(frames, level="outpost")
        rs = restarts(frames)
        errors = parse_errors(frames) if summary.parse_errors else None
    with step("latency"):
        lat = ack_latency(frames)
        overall, over_time = _fleet_latency([lat], summary)
        per_outpost = latency_percentiles(lat, by="outpost_uuid")
    with step("hello"):
        hi = hello_intervals(frames) if len(frames) <= hello_limit else None
    with step("notices"):
        nfreq = _freq(summary)
        notices = notice_frequency(frames, freq=nfreq)
        top = top_messages(frames, n=20)
    with step("fan-out"):
        fan = trigger_fanout(frames)
    return Parts(summary, out, n_inst, up, inv, rs, [lat], overall, over_time, per_outpost, hi, notices, nfreq, top,
                 fan, errors)  # fmt: skip


def _merge_summaries(parts: list[CaptureSummary], captures: int) -> CaptureSummary:
    def add(name: str) -> dict[str, int]:
        total: Counter[str] = Counter()
        for p in parts:
            total.update(getattr(p, name))
        return dict(total.most_common())

    starts = [p.start for p in parts if p.start is not None]
    ends = [p.end for p in parts if p.end is not None]
    return CaptureSummary(
        events=sum(p.events for p in parts),
        start=min(starts) if starts else None,
        end=max(ends) if ends else None,
        captures=captures,
        connections=sum(p.connections for p in parts),
        outposts=sum(p.outposts for p in parts),
        instances=sum(p.instances for p in parts),
        parse_errors=sum(p.parse_errors for p in parts),
        by_endpoint=add("by_endpoint"),
        by_event=add("by_event"),
        by_instruction=add("by_instruction"),
        by_message_type=add("by_message_type"),
        top_parse_errors=dict(list(add("top_parse_errors").items())[:5]),
    )


def analyse_capture(
    path: str | os.PathLike[str],
    opts: dict[str, Any],
    *,
    hello_limit: int,
    chunk_rows: int,
    step: Step,
    progress: bool = False,
) -> Parts:
    """Every part of the report from a capture on disk, in groups of outpost buckets of at most *chunk_rows* / 2 frames.

    A capture of at most *chunk_rows* frames is analysed in one pass. A larger
    one is read by outpost bucket (:func:`wsreplay.store.partition.bucket_partitions`):
    a compacted capture's groups read only their buckets' files; an
    uncompacted one is split into temporary per-bucket files in one pass
    (the capture is not changed), then each group reads its own, the next
    one in a background thread while this one is analysed. The two groups in
    memory at a time hold at most *chunk_rows* frames together (a bucket larger
    than that is a group of its own): memory is bounded by *chunk_rows*, not by
    the capture.
    """
    with contextlib.ExitStack() as stack:
        with step("load"):  # one frames table, or the capture's buckets (split in one pass unless compacted)
            total = capture_rows(path)
            if total <= chunk_rows:
                frames = load(path, columns=list(REPORT_COLUMNS))
            else:
                parts = stack.enter_context(bucket_partitions(path, columns=REPORT_COLUMNS, chunk_rows=chunk_rows))
                window = {**opts, "span": capture_span(path)}
        if total <= chunk_rows:
            return analyse_frames(frames, opts, hello_limit=hello_limit, step=step)
        return _analyse_groups(parts, window, chunk_rows=chunk_rows, step=step, progress=progress)


def _frames_ahead(parts: Partitions, groups: list[list[int]]) -> Iterator[pd.DataFrame]:
    """Each group's frames in turn; the next group is read in a background thread meanwhile (:mod:`wsreplay._ahead`).

    Reading (Parquet decoding, the sort back into time order, the conversion
    to pandas) runs mostly outside the GIL, and the analyses of a group on one
    core, so the two overlap on a machine with two cores or more.
    """
    frames = (table_to_frames(parts.table(group, columns=_OUTPOST_COLUMNS)) for group in groups)
    return ahead(frames, name="wsreplay-report-read")


def _analyse_groups(parts: Partitions, window: dict[str, Any], *, chunk_rows: int, step: Step, progress: bool) -> Parts:
    groups = parts.groups(max(1, chunk_rows // 2))  # two groups in memory at a time: one analysed, one read
    summaries: list[CaptureSummary] = []
    outs: list[pd.DataFrame] = []
    ups: list[pd.DataFrame] = []
    invs: list[pd.DataFrame] = []
    rss: list[pd.DataFrame] = []
    lats: list[pd.DataFrame] = []
    pcts: list[pd.DataFrame] = []
    fans: list[pd.DataFrame] = []
    errs: list[pd.DataFrame] = []
    captures: set[str] = set()
    n_inst = 0
    bar: Any = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(groups), desc="outpost groups", unit="group", leave=False)
    with step(f"outposts ({len(groups)} groups)"):
        for frames in _frames_ahead(parts, groups):
            captures.update(str(c) for c in frames["capture_id"].dropna().unique())
            s = summarize(frames)
            summaries.append(s)
            coverage_levels(frames, ("outpost", "instance"), **window)
            outs.append(outages(frames, level="outpost", **window))
            n_inst += len(outages(frames, level="instance", **window))
            ups.append(uptime(frames, level="outpost", **window))
            invs.append(fleet(frames, level="outpost"))
            rss.append(restarts(frames))
            lat = ack_latency(frames)
            pcts.append(latency_percentiles(lat, by="outpost_uuid"))
            lats.append(pd.DataFrame({"sent_ts": lat["sent_ts"], "latency_s": lat["latency_s"]}))
            fans.append(trigger_fanout(frames))
            if s.parse_errors:
                errs.append(parse_errors(frames))
            del frames, lat
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    with step("browsers"):
        browsers = ds.field("endpoint").isin(["client", "other"])
        client = table_to_frames(parts.table([NO_BUCKET], columns=REPORT_COLUMNS, filter=browsers))
        captures.update(str(c) for c in client["capture_id"].dropna().unique())
        cs = summarize(client)
        summaries.append(cs)
        if cs.parse_errors:
            errs.append(parse_errors(client))
    summary = _merge_summaries(summaries, len(captures))
    with step("latency"):
        # one piece per group, never concatenated: the fleet-wide percentiles bin each piece (in time
        # order already) and gather a bin's values from every piece; a week holds 60 M latencies
        overall, over_time = _fleet_latency(lats, summary)
    with step("notices"):
        nfreq = _freq(summary)
        notices = notice_frequency(client, freq=nfreq)
        top = top_messages(client, n=20)

    def cat(frames: list[pd.DataFrame], by: str | list[str]) -> pd.DataFrame:
        return pd.concat(frames, ignore_index=True).sort_values(by, kind="stable", ignore_index=True)

    errors = None
    if errs:
        errors = cat(errs, "first_seen").sort_values("frames", ascending=False, kind="stable", ignore_index=True)
    return Parts(
        summary=summary,
        outages=cat(outs, ["start", "outpost_uuid"]),
        instance_outages=n_inst,
        uptime=cat(ups, "outpost_uuid"),
        fleet=cat(invs, "outpost_uuid"),
        restarts=cat(rss, "ts"),
        latency=lats,
        overall=overall,
        over_time=over_time,
        per_outpost=cat(pcts, "outpost_uuid"),
        hello=None,
        notices=notices,
        notice_freq=nfreq,
        top_notices=top,
        fanout=cat(fans, "push_ts"),
        errors=errors,
        chunks=len(groups),
    )
