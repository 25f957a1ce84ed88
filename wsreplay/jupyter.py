"""Jupyter glue: HTML views of wsreplay's objects and progress bars for long loads and runs.

In a notebook::

    %load_ext wsreplay.jupyter          # or: wsreplay.jupyter.enable()
    frames = wsreplay.jupyter.load("capture/")          # a tqdm.auto bar per segment
    with wsreplay.jupyter.timed_progress(60, desc="recording"):
        ...                                               # a bar that fills in 60 s

``enable()`` teaches IPython to show a :class:`~wsreplay.sim.Scenario`, a
:class:`~wsreplay.sim.Truth`, a :class:`~wsreplay.record.RecordingHandle` and
:class:`~wsreplay.record.RecorderStats` as HTML tables (the capture summary
and the report already render as HTML on their own). Progress bars come from
``tqdm.auto``: widgets in Jupyter, text in a terminal.
"""

from __future__ import annotations

import html
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd

__all__ = [
    "enable",
    "load",
    "timed_progress",
    "run_fleet",
    "scenario_html",
    "truth_html",
    "recording_html",
    "stats_html",
    "load_ipython_extension",
]


@contextmanager
def timed_progress(seconds: float, *, desc: str = "running", enabled: bool = True) -> Iterator[Any]:
    """A ``tqdm.auto`` bar that fills over *seconds* of wall time while the block runs.

    For runs of known length (a real-time simulation, a recording of a set
    duration): the block does the work; a daemon thread advances the bar.
    Yields the bar (``None`` when *enabled* is false).
    """
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    total = max(float(seconds), 0.0)
    bar = tqdm(total=round(total, 1), desc=desc, unit="s", bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s")
    done = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        shown = 0.0
        while not done.wait(0.25):
            now = min(time.monotonic() - start, total)
            if now > shown:
                bar.update(round(now - shown, 2))
                shown = now

    thread = threading.Thread(target=tick, name="wsreplay-progress", daemon=True)
    thread.start()
    try:
        yield bar
    finally:
        done.set()
        thread.join()
        bar.close()


def load(
    path: str | os.PathLike[str], *, progress: bool = True, columns: Sequence[str] | None = None, **kwargs: Any
) -> pd.DataFrame:
    """:func:`wsreplay.load` with a progress bar over the capture's segments.

    Same result as ``wsreplay.load(path, columns=columns, **kwargs)``; the
    segments are read one at a time so the bar moves on long captures.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from .schema import table_to_frames
    from .store import load_table
    from .store.listing import segment_files

    segs = segment_files(path)
    files = [*segs.parquet, *segs.streams]
    if len(files) <= 1 or not progress:
        from .store import load as _load

        return _load(path, columns=columns, **kwargs)
    from tqdm.auto import tqdm

    tables = [
        load_table(f, columns=columns, **kwargs)
        for f in tqdm(files, desc=f"loading {os.fspath(path)}", unit="segment", leave=False)
    ]
    table = pa.concat_tables(tables)
    if "ts" in table.column_names and table.num_rows > 1:
        ts = table["ts"]
        if not pc.all(pc.greater_equal(ts.slice(1), ts.slice(0, len(ts) - 1))).as_py():
            keys = [("ts", "ascending")] + ([("seq", "ascending")] if "seq" in table.column_names else [])
            table = table.take(pc.sort_indices(table, sort_keys=keys))
    return table_to_frames(table)


def run_fleet(
    scenario: Any,
    url: str,
    *,
    progress: bool = True,
    mock: Any = None,
    capture: Any = None,
    session: str | None = None,
    open_timeout: float = 5.0,
) -> Any:
    """:func:`wsreplay.sim.run_fleet` (the same parameters) with a bar that fills over the scenario's duration."""
    from .sim import run_fleet

    with timed_progress(scenario.duration, desc="simulated fleet", enabled=progress):
        return run_fleet(scenario, url, mock=mock, capture=capture, session=session, open_timeout=open_timeout)


# ---------------------------------------------------------------------- HTML views


def _table(rows: Sequence[tuple[str, Any]], caption: str) -> str:
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
        f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table class='wsreplay'><caption>{html.escape(caption)}</caption>{body}</table>"


def _frame(df: pd.DataFrame, max_rows: int = 20) -> str:
    return str(df.head(max_rows).to_html(index=False, border=0, na_rep="-", escape=True))


def scenario_html(scenario: Any) -> str:
    """A :class:`~wsreplay.sim.Scenario` as HTML: its settings and its faults (never the tokens)."""
    rows = [
        ("outposts", f"{len(scenario.outposts)} ({sum(s.replicas for s in scenario.outposts)} processes)"),
        ("duration", f"{scenario.duration:g} s"),
        ("HELLO interval", f"{scenario.interval:g} s (jitter {scenario.jitter:.0%})"),
        ("ACK latency", f"{scenario.ack_latency * 1e3:g} ms"),
        ("browsers", scenario.browsers),
        ("notices", len(scenario.notices)),
        ("faults", len(scenario.faults)),
        ("seed", scenario.seed),
    ]
    out = _table(rows, "wsreplay scenario")
    if scenario.faults:
        faults = pd.DataFrame(
            [
                {
                    "at_s": f.at,
                    "kind": f.kind,
                    "outpost": f.outpost or "(server)",
                    "replica": f.replica,
                    "duration_s": f.duration,
                }
                for f in scenario.faults
            ]
        )
        out += _frame(faults, max_rows=50)
    return out


def truth_html(truth: Any) -> str:
    """A simulator :class:`~wsreplay.sim.Truth` as HTML: its span and outages."""
    out = truth.outages
    by = out.groupby(["level", "cause"]).size() if len(out) else pd.Series(dtype=int)
    rows = [
        ("clock", truth.clock),
        ("span", f"{truth.start} .. {truth.end}"),
        ("instances", len(truth.instances)),
        ("HELLOs sent", len(truth.hellos)),
        ("outages", ", ".join(f"{k[0]}/{k[1]} {n}" for k, n in by.items()) or "none"),  # type: ignore[index]
    ]
    return _table(rows, "wsreplay simulation truth") + _frame(out[out["level"] == "outpost"])


def stats_html(stats: Any) -> str:
    """:class:`~wsreplay.record.RecorderStats` as an HTML table."""
    return _table(list(stats.as_dict().items()), "recorder")


def recording_html(handle: Any) -> str:
    """A running :class:`~wsreplay.record.RecordingHandle`: where to point outposts, where it writes, counters."""
    state = "stopped" if getattr(handle, "_stopped", False) else "recording"
    rows = [("state", state), ("url", handle.url), ("capture", handle.out), *handle.stats.as_dict().items()]
    return _table(rows, "wsreplay recording")


def enable(ip: Any = None) -> bool:
    """Register the HTML views with IPython; return whether an IPython shell was found."""
    if ip is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        ip = get_ipython()
    if ip is None:
        return False
    from .record import RecorderStats, RecordingHandle
    from .sim import Scenario, Truth

    formatter = ip.display_formatter.formatters["text/html"]
    formatter.for_type(Scenario, scenario_html)
    formatter.for_type(Truth, truth_html)
    formatter.for_type(RecordingHandle, recording_html)
    formatter.for_type(RecorderStats, stats_html)
    return True


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext wsreplay.jupyter``."""
    enable(ip)
