"""The fleet health report: one self-contained HTML page from a capture.

Everything on the page comes from :mod:`wsreplay.analysis` (and
:func:`wsreplay.summarize`); :mod:`wsreplay.plot` draws the figures, which are
embedded as base64 PNG so the file opens anywhere, offline, on its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from .. import __version__
from ..exceptions import ConfigurationError
from ..plot import plot_ack_latency, plot_hello_intervals, plot_notices, plot_trigger_fanout, plot_uptime
from ..plot._style import CAUSE_COLORS
from ..plot.latency import latency_histogram
from .analyse import REPORT_COLUMNS, Parts, analyse_capture, analyse_frames
from .figures import img_tag, render_png
from .html import Raw, esc, fmt_pct, fmt_s, fmt_ts, key_values, page, section, table

__all__ = ["Report", "report", "write_report", "REPORT_COLUMNS"]

_STEPS = ("load", "summary", "outages", "fleet", "latency", "hello", "notices", "fan-out", "figures", "html")


@dataclass
class Report:
    """A rendered report: the HTML page and how long each step took.

    Displays inline in Jupyter (``_repr_html_``); :meth:`save` writes the file.
    """

    html: str
    title: str
    timings: dict[str, float] = field(default_factory=dict)
    outposts: int = 0
    outages: int = 0
    #: outpost groups the capture was analysed in (1: in one go)
    chunks: int = 1

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the page to *path* (UTF-8); return the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.html, encoding="utf-8")
        return target

    def _repr_html_(self) -> str:
        # an iframe keeps the report's CSS from leaking into the notebook
        import html as _html

        return (
            f'<iframe srcdoc="{_html.escape(self.html, quote=True)}" '
            "style='width:100%;height:900px;border:1px solid #ddd'></iframe>"
        )

    def __repr__(self) -> str:
        return f"<Report {self.title!r}: {self.outposts} outposts, {self.outages} outages, {len(self.html):,} bytes>"


class _Steps:
    """Times each step; drives a tqdm.auto bar when asked."""

    def __init__(self, progress: bool) -> None:
        self.timings: dict[str, float] = {}
        self.bar: Any = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=len(_STEPS), desc="report", unit="step", leave=False)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self.bar is not None:
            if self.bar.n >= self.bar.total:  # a chunked analysis has other steps than the usual ones
                self.bar.total = self.bar.n + 1
            self.bar.set_postfix_str(name)
        t0 = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - t0
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.total = self.bar.n
            self.bar.close()


def _cause(value: Any) -> str:
    c = str(value)
    color = CAUSE_COLORS.get(c, "#7f7f7f")
    return Raw(f"<span class='cause' style='background:{color}'></span>{esc(c.replace('_', ' '))}")


def _yes(value: Any) -> str:
    return "yes" if bool(value) else ""


def _ms(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else f"{float(value) * 1e3:.3g} ms"


def _int(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else f"{int(value):,}"


def _figure(draw: Callable[[Any], Any], size: tuple[float, float], alt: str, dpi: int) -> str:
    return img_tag(render_png(draw, size=size, dpi=dpi), alt=alt)


def report(
    capture: str | os.PathLike[str] | pd.DataFrame,
    /,
    *,
    title: str | None = None,
    top: int = 25,
    max_rows: int = 300,
    policy: Literal["observed", "authentik"] = "observed",
    factor: float = 1.5,
    interval: float | str | pd.Timedelta | None = None,
    start: Any = None,
    end: Any = None,
    dpi: int = 100,
    hello_limit: int = 5_000_000,
    chunk_rows: int = 20_000_000,
    progress: bool = False,
    engine: Literal["pandas", "dask"] = "pandas",
) -> Report:
    """Build the fleet health report of a capture.

    Parameters
    ----------
    capture : path or pandas.DataFrame
        A capture directory or file (only :data:`REPORT_COLUMNS` are read), or
        frames already loaded.
    title : str, optional
        Page title (default: the capture's name).
    top : int
        Outposts drawn one per row in the uptime timeline (the rest share an
        ``others`` row).
    max_rows : int
        Rows shown in each table (the page says how many there are in all).
    policy, factor, interval, start, end
        Passed to :func:`wsreplay.outages` and :func:`wsreplay.uptime`.
    dpi : int
        Resolution of the embedded figures.
    hello_limit : int
        The HELLO interval histogram (one value per HELLO) is drawn only for
        captures of at most this many frames.
    chunk_rows : int
        A capture on disk with more frames than this is analysed in groups of
        outposts of at most half this many frames each, the next group read
        while one is analysed: about this many frames in memory at a time
        (bounded memory, same numbers; see :mod:`wsreplay.reporting.analyse`).
    progress : bool
        Show a ``tqdm.auto`` progress bar (a widget in Jupyter).
    engine : {"pandas", "dask"}
        ``"dask"``: analyse the capture (a path, an fsspec URL or a
        :func:`wsreplay.dask.load` frame) partition by partition on the current
        Dask scheduler (:mod:`wsreplay.reporting.dask_analyse`); same numbers.

    Returns
    -------
    Report
        ``.html`` is the page; ``.save(path)`` writes it; in Jupyter it displays inline.

    Examples
    --------
    >>> wsreplay.report("sample_captures/fleet_day").save("fleet_day.html")  # doctest: +SKIP
    """
    if top < 2 or max_rows < 1:
        raise ConfigurationError("top must be >= 2 and max_rows >= 1")
    if engine not in ("pandas", "dask") or (engine == "dask" and isinstance(capture, pd.DataFrame)):
        raise ConfigurationError(f"engine must be 'pandas' or 'dask' (with a path or a Dask frame), not {engine!r}")
    steps = _Steps(progress)
    opts = {"policy": policy, "factor": factor, "interval": interval, "start": start, "end": end}
    try:
        if engine == "dask":
            from .dask_analyse import analyse_dask

            name = title or (Path(capture).name if isinstance(capture, (str, os.PathLike)) else "capture")
            parts = analyse_dask(capture, opts, step=steps.step)
        elif isinstance(capture, pd.DataFrame):
            name = title or "capture"
            parts = analyse_frames(capture, opts, hello_limit=hello_limit, step=steps.step)
        else:
            name = Path(capture).name or str(capture)
            parts = analyse_capture(
                capture, opts, hello_limit=hello_limit, chunk_rows=chunk_rows, step=steps.step, progress=progress
            )
        return _render(parts, title or f"wsreplay report: {name}", steps, top, max_rows, dpi, opts)
    finally:
        steps.close()


def _render(parts: Parts, title: str, steps: _Steps, top: int, max_rows: int, dpi: int, opts: dict[str, Any]) -> Report:
    summary, out, up, rs, lat, fan = (
        parts.summary,
        parts.outages,
        parts.uptime,
        parts.restarts,
        parts.latency,
        parts.fanout,
    )
    over_time, hi, notices, nfreq = parts.over_time, parts.hello, parts.notices, parts.notice_freq
    with steps.step("figures"):
        n_rows = min(len(up), top)
        figs = {
            "uptime": _figure(
                lambda ax: plot_uptime(out, level="outpost", uptime=up, restarts=rs, top=top, ax=ax),
                (12.0, 1.3 + 0.3 * max(n_rows, 1)),
                "uptime timeline",
                dpi,
            ),
            "latency": _figure(
                lambda ax: plot_ack_latency(over_time, ax=ax), (12.0, 3.8), "ACK latency over time", dpi
            ),
            "latency_hist": _figure(
                lambda ax: latency_histogram(lat, parts.overall, ax=ax), (8.0, 3.4), "ACK latency distribution", dpi
            ),
            "notices": _figure(lambda ax: plot_notices(notices, freq=nfreq, ax=ax), (12.0, 3.4), "notices", dpi),
        }
        if hi is not None:
            figs["hello"] = _figure(lambda ax: plot_hello_intervals(hi, ax=ax), (8.0, 3.4), "HELLO intervals", dpi)
        if len(fan):
            figs["fanout"] = _figure(lambda ax: plot_trigger_fanout(fan, ax=ax), (12.0, 3.4), "TRIGGER_UPDATE", dpi)

    with steps.step("html"):
        sections = _sections(parts, figs, max_rows)
        span_text = (
            "empty capture"
            if summary.start is None
            else (f"{fmt_ts(summary.start)} .. {fmt_ts(summary.end)} UTC ({fmt_s(summary.duration_s)})")
        )
        nav = [(a, t) for a, t, _ in sections]
        generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        footer = (
            f"Generated by wsreplay {__version__} on {generated}. Outages use policy={opts['policy']}, "
            f"factor={opts['factor']}; definitions: wsreplay.analysis.coverage."
        )
        body = [section(a, t, b) for a, t, b in sections]
        html_text = page(title, span_text, nav, body, footer)
    return Report(html=html_text, title=title, timings=steps.timings, outposts=summary.outposts, outages=len(out),
                  chunks=parts.chunks)  # fmt: skip


def _sections(parts: Parts, figs: dict[str, str], max_rows: int) -> list[tuple[str, str, str]]:
    summary, out, up, inv, rs = parts.summary, parts.outages, parts.uptime, parts.fleet, parts.restarts
    overall, per_outpost, top_notices, fan, errors = (
        parts.overall, parts.per_outpost, parts.top_notices, parts.fanout, parts.errors
    )  # fmt: skip
    o = overall.iloc[0] if len(overall) else pd.Series(dtype=float)
    worst = up["uptime"].min() if len(up) else float("nan")
    fleet_up = (up["up_s"].sum() / up["observed_s"].sum()) if len(up) and up["observed_s"].sum() > 0 else float("nan")
    cards = key_values(
        [
            ("outposts", f"{summary.outposts:,}"),
            ("instances", f"{summary.instances:,}"),
            ("outpost outages", f"{len(out):,}"),
            ("instance outages", f"{parts.instance_outages:,}"),
            ("fleet uptime", fmt_pct(fleet_up)),
            ("worst outpost uptime", fmt_pct(worst)),
            ("restarts / upgrades", f"{len(rs):,} / {int(rs['upgrade'].sum()) if len(rs) else 0:,}"),
            ("ACK p50 / p99", f"{_ms(o.get('p50_s'))} / {_ms(o.get('p99_s'))}"),
            ("frames never ACKed", _int(o.get("unanswered", 0))),
        ]
    )
    by_cause = out.groupby("cause", observed=True).agg(outages=("duration_s", "size"), down_s=("duration_s", "sum"))
    cause_table = table(
        by_cause.reset_index(),
        {"cause": ("cause", _cause), "outages": ("outages", _int), "down_s": ("total down time", fmt_s)},
        numeric=("outages", "down_s"),
    )
    sections = [
        ("summary", "Summary", cards + summary._repr_html_()),
        (
            "uptime",
            "Uptime",
            "<p class='note'>One row per outpost, worst first; coloured spans are outages by cause, "
            "<b>|</b> a new instance (restart), <b>&#9650;</b> a new version (upgrade). Percentages are each outpost's "
            "uptime over the time it was observed.</p>" + figs["uptime"] + cause_table,
        ),
    ]
    outage_cols: dict[str, tuple[str, Callable[[Any], str] | None]] = {
        "start": ("start (UTC)", fmt_ts),
        "end": ("end (UTC)", fmt_ts),
        "duration_s": ("duration", fmt_s),
        "cause": ("cause", _cause),
        "outpost_uuid": ("outpost", None),
        "instance_uuid": ("last instance up", None),
        "ongoing": ("ongoing", _yes),
    }
    sections.append(
        (
            "outages",
            "Outages",
            f"<p class='note'>{len(out):,} times an outpost had no instance up, in time order "
            "(wsreplay.outages(frames, level='outpost')).</p>"
            + table(
                out,
                outage_cols,
                max_rows=max_rows,
                numeric=("duration_s",),
                ids=("outpost_uuid", "instance_uuid"),
                what="outages",
            ),
        )
    )
    fl = inv.merge(
        up[["outpost_uuid", "uptime", "observed_share", "down_s", "outages", "longest_outage_s"]],
        on="outpost_uuid",
        how="left",
    )
    fl = fl.merge(per_outpost[["outpost_uuid", "p50_s", "p99_s"]], on="outpost_uuid", how="left")
    fl = fl.sort_values(["uptime", "outpost_uuid"], na_position="last", kind="stable")
    fleet_cols = {
        "outpost_uuid": ("outpost", None),
        "version": ("version", None),
        "versions": ("versions seen", None),
        "instances": ("instances", _int),
        "restarts": ("restarts", _int),
        "upgrades": ("upgrades", _int),
        "uptime": ("uptime", fmt_pct),
        "observed_share": ("observed", fmt_pct),
        "outages": ("outages", _int),
        "down_s": ("down", fmt_s),
        "longest_outage_s": ("longest outage", fmt_s),
        "p50_s": ("ACK p50", _ms),
        "p99_s": ("ACK p99", _ms),
        "last_seen": ("last seen (UTC)", fmt_ts),
    }
    versions = inv.groupby("version").size().sort_values(ascending=False)
    vtext = ", ".join(f"{esc(v)} &times; {n:,}" for v, n in versions.items()) or "-"
    sections.append(
        (
            "fleet",
            "Fleet",
            f"<p class='note'>Current versions: {vtext}. Worst uptime first. <i>observed</i>: the share of "
            "the capture's window the outpost was seen in (its uptime speaks for that share only).</p>"
            + table(
                fl,
                fleet_cols,
                max_rows=max_rows,
                ids=("outpost_uuid",),
                what="outposts",
                numeric=(
                    "instances",
                    "restarts",
                    "upgrades",
                    "uptime",
                    "observed_share",
                    "outages",
                    "down_s",
                    "longest_outage_s",
                    "p50_s",
                    "p99_s",
                ),
            ),
        )
    )
    sections.append(("latency", "ACK latency", figs["latency"] + figs["latency_hist"]))
    if "hello" in figs:
        sections.append(("hello", "HELLO intervals", figs["hello"]))
    else:
        sections.append(
            (
                "hello",
                "HELLO intervals",
                f"<p class='note'>Left out: the capture has {summary.events:,} frames (more than hello_limit). "
                "Plot a time slice with wsreplay.plot_hello_intervals(wsreplay.load(capture, start=..., "
                "end=...)).</p>",
            )
        )
    notice_cols = {
        "message_type": ("type", None),
        "level": ("level", None),
        "message": ("message", None),
        "frames": ("frames", _int),
        "first_seen": ("first seen (UTC)", fmt_ts),
        "last_seen": ("last seen (UTC)", fmt_ts),
    }
    sections.append(
        (
            "notices",
            "Notices",
            figs["notices"] + (table(top_notices, notice_cols, numeric=("frames",)) if len(top_notices) else ""),
        )
    )
    if "fanout" in figs:
        pushes = fan.drop_duplicates(["outpost_uuid", "push"]).shape[0]
        missed = int(fan["delay_s"].isna().sum())
        sections.append(
            (
                "fanout",
                "TRIGGER_UPDATE fan-out",
                f"<p class='note'>{pushes:,} pushes; {missed:,} connections open at a push never got it.</p>"
                + figs["fanout"],
            )
        )
    if errors is not None and len(errors):
        err_cols = {
            "endpoint": ("endpoint", None),
            "direction": ("direction", None),
            "parse_error": ("reason", None),
            "frames": ("frames", _int),
            "connections": ("connections", _int),
            "first_seen": ("first seen (UTC)", fmt_ts),
        }
        sections.append(("errors", "Frames that did not decode", table(errors, err_cols, max_rows=50)))
    return sections


def default_output(capture: str | os.PathLike[str]) -> Path:
    """Where ``wsreplay report CAPTURE`` writes without ``-o``: ``<capture>.html`` beside it."""
    p = Path(capture).resolve()
    return p.with_suffix(".html") if p.is_file() else p.parent / f"{p.name}.html"


def write_report(
    capture: str | os.PathLike[str] | pd.DataFrame,
    out: str | os.PathLike[str] | None = None,
    /,
    **options: Any,
) -> Path:
    """Build the report of *capture* (see :func:`report`) and write it to *out*; return the path.

    *out* defaults to ``<capture>.html`` next to the capture (required when
    *capture* is a DataFrame).
    """
    if out is None:
        if isinstance(capture, pd.DataFrame):
            raise ConfigurationError("write_report needs an output path when given a DataFrame")
        out = default_output(capture)
    return report(capture, **options).save(out)
