"""What is in a capture: counts, time span, outposts, parse errors (``wsreplay info``)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["CaptureSummary", "summarize"]


@dataclass
class CaptureSummary:
    """Counts describing a frames DataFrame.

    Renders as text (``str``) and as an HTML table in Jupyter.
    """

    events: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    captures: int
    connections: int
    outposts: int
    instances: int
    parse_errors: int
    by_endpoint: dict[str, int] = field(default_factory=dict)
    by_event: dict[str, int] = field(default_factory=dict)
    by_instruction: dict[str, int] = field(default_factory=dict)
    by_message_type: dict[str, int] = field(default_factory=dict)
    top_parse_errors: dict[str, int] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Seconds between the first and the last event (0 for an empty capture)."""
        if self.start is None or self.end is None:
            return 0.0
        return float((self.end - self.start).total_seconds())

    def _lines(self) -> list[tuple[str, str]]:
        span = "empty" if self.start is None else f"{self.start} .. {self.end} ({self.duration_s:,.1f} s)"

        def fmt(d: dict[str, int]) -> str:
            return ", ".join(f"{k} {v:,}" for k, v in d.items()) or "-"

        rows = [
            ("events", f"{self.events:,}"),
            ("time span", span),
            ("captures", f"{self.captures:,}"),
            ("connections", f"{self.connections:,}"),
            ("outposts", f"{self.outposts:,}"),
            ("instances", f"{self.instances:,}"),
            ("by endpoint", fmt(self.by_endpoint)),
            ("by event", fmt(self.by_event)),
            ("by instruction", fmt(self.by_instruction)),
            ("by message type", fmt(self.by_message_type)),
            ("parse errors", f"{self.parse_errors:,}"),
        ]
        if self.top_parse_errors:
            rows.append(("most common errors", fmt(self.top_parse_errors)))
        return rows

    def __str__(self) -> str:
        lines = self._lines()
        width = max(len(k) for k, _ in lines)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in lines)

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self._lines()
        )
        return f"<table class='wsreplay-summary'><caption>wsreplay capture</caption>{body}</table>"


def _counts(series: pd.Series) -> dict[str, int]:
    """Non-null values and how often each occurs, most frequent first (ties: first seen first)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        # counted on the integer codes: casting millions of rows to str first took seconds per column
        codes = series.cat.codes.to_numpy()
        codes = codes[codes >= 0]
        seen = pd.unique(codes)  # in order of first appearance, as value_counts breaks ties
        seen_counts = np.bincount(codes, minlength=len(series.cat.categories))[seen]
        order = np.argsort(-seen_counts, kind="stable")
        cats = series.cat.categories
        return {str(cats[seen[i]]): int(seen_counts[i]) for i in order}
    counts = series.dropna().astype(str).value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def _nunique(frames: pd.DataFrame, col: str) -> int:
    return int(frames[col].nunique(dropna=True)) if col in frames else 0


def summarize(frames: pd.DataFrame, /, *, top_errors: int = 5) -> CaptureSummary:
    """Summarise a frames DataFrame.

    Parameters
    ----------
    frames : pandas.DataFrame
        As returned by :func:`wsreplay.load`.
    top_errors : int
        How many distinct parse errors to list.

    Returns
    -------
    CaptureSummary
    """
    n = len(frames)
    start = frames["ts"].min() if n else None
    end = frames["ts"].max() if n else None
    errors = frames["parse_error"].dropna() if "parse_error" in frames else pd.Series(dtype="string")
    return CaptureSummary(
        events=n,
        start=start,
        end=end,
        captures=_nunique(frames, "capture_id"),
        connections=_nunique(frames, "conn_id"),
        outposts=_nunique(frames, "outpost_uuid"),
        instances=_nunique(frames, "instance_uuid"),
        parse_errors=len(errors),
        by_endpoint=_counts(frames["endpoint"]) if "endpoint" in frames else {},
        by_event=_counts(frames["event"]) if "event" in frames else {},
        by_instruction=_counts(frames["instruction_name"]) if "instruction_name" in frames else {},
        by_message_type=_counts(frames["message_type"]) if "message_type" in frames else {},
        top_parse_errors=dict(list(_counts(errors).items())[:top_errors]),
    )
