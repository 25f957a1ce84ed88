"""The recorder's metrics as Prometheus metric families (a ``prometheus_client`` collector).

Everything is computed when Prometheus scrapes: the fleet from the rows the
recorder wrote (:class:`~wsreplay.metrics.rows.RowMetrics`, evaluated at the
scrape's moment on the recorder's clock, so ``wsreplay_outpost_up`` is exact
then), the recorder's own health from its sink and writer. See
:data:`METRICS` for the names.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from ..exceptions import ConfigurationError
from .rows import RowMetrics

__all__ = [
    "RecorderCollector",
    "CaptureHealth",
    "capture_health",
    "render_openmetrics",
    "METRICS",
    "OPENMETRICS_CONTENT_TYPE",
    "require_prometheus_client",
]

#: Content type of :func:`render_openmetrics`' output.
OPENMETRICS_CONTENT_TYPE: Final = "application/openmetrics-text; version=1.0.0; charset=utf-8"

#: Every metric family exported: name -> (type, labels, help).
METRICS: Final[dict[str, tuple[str, tuple[str, ...], str]]] = {
    "wsreplay_frames_total": (
        "counter",
        ("endpoint", "direction", "instruction"),
        "WebSocket frames relayed and recorded (instruction: outpost frames' decoded instruction, else empty).",
    ),
    "wsreplay_connections_open": ("gauge", ("endpoint",), "WebSocket connections open now."),
    "wsreplay_outpost_instances_connected": (
        "gauge",
        ("outpost",),
        "Instances (processes) of the outpost with an open connection.",
    ),
    "wsreplay_outpost_last_hello_timestamp_seconds": (
        "gauge",
        ("outpost",),
        "Time of the outpost's last HELLO (seconds since the epoch).",
    ),
    "wsreplay_outpost_up": (
        "gauge",
        ("outpost",),
        "1 while the outpost is up by wsreplay.outages' rule (a refresh younger than factor x interval "
        "on an open connection), else 0; absent before its first HELLO.",
    ),
    "wsreplay_ack_latency_seconds": (
        "histogram",
        ("endpoint",),
        "Time from a frame an outpost sent to authentik's ACK "
        "(ack_latency's pairing: the first ACK before the next frame).",
    ),
    "wsreplay_notices_total": ("counter", ("level",), "Notices authentik pushed to browsers."),
    "wsreplay_handshakes_refused_total": (
        "counter",
        (),
        "WebSocket handshakes the upstream refused or could not take.",
    ),
    "wsreplay_outposts_tracked": ("gauge", (), "Outposts in the outpost series (seen within the retention window)."),
    "wsreplay_capture_pending_rows": ("gauge", (), "Rows recorded and not yet on disk."),
    "wsreplay_capture_flush_lag_seconds": (
        "gauge",
        (),
        "Seconds since the capture was last flushed to disk with nothing left behind.",
    ),
    "wsreplay_capture_write_errors_total": ("counter", (), "Writes of the capture the disk refused."),
    "wsreplay_capture_bytes_total": ("counter", (), "Bytes written to the capture's segments."),
    "wsreplay_capture_rows_total": ("counter", (), "Rows written to the capture."),
    "wsreplay_capture_ready": (
        "gauge",
        (),
        "1 while the capture can be written (what /-/ready answers with 200), else 0.",
    ),
    "wsreplay_metrics_observer_errors_total": (
        "counter",
        (),
        "Batches of rows the live metrics failed to read (the capture is unaffected).",
    ),
}

#: Readiness fails when no flush succeeded for this many flush intervals (at least :data:`_MIN_STALL_S`).
STALL_FLUSHES: Final = 5
_MIN_STALL_S: Final = 10.0


def require_prometheus_client() -> Any:
    """Import ``prometheus_client`` or raise one clear line saying how to install it."""
    try:
        import prometheus_client
    except ImportError as exc:
        raise ConfigurationError(
            "live metrics need the prometheus-client package: pip install 'wsreplay[metrics]'"
        ) from exc
    return prometheus_client


@dataclass(frozen=True)
class CaptureHealth:
    """The recorder's own health at one moment."""

    running: bool
    pending_rows: int
    flush_lag_s: float
    write_errors: int
    bytes_total: int
    rows_total: int
    observer_errors: int
    ready: bool
    reason: str


def capture_health(sink: Any, *, running: bool, flush_interval: float) -> CaptureHealth:
    """Read *sink* (a :class:`~wsreplay.record.sink.RowSink`, or ``None``) and decide readiness.

    Ready (``/-/ready`` answers 200) while the recorder runs, its last write to
    the capture succeeded, and a flush succeeded within the last
    ``max(5 x flush_interval, 10 s)``; otherwise 503 with the reason.
    """
    if sink is None:
        return CaptureHealth(False, 0, 0.0, 0, 0, 0, 0, False, "the recorder is not running")
    stats = sink.writer.stats
    lag = float(sink.flush_lag)
    stall = max(STALL_FLUSHES * flush_interval, _MIN_STALL_S)
    if not running:
        ready, reason = False, "the recorder is not running"
    elif stats.failing:
        ready, reason = False, f"cannot write the capture: {stats.last_error}"
    elif lag > stall:
        ready, reason = False, f"no flush of the capture for {lag:.1f} s"
    else:
        ready, reason = True, f"writing the capture to {sink.writer.out}"
    return CaptureHealth(
        running=running,
        pending_rows=int(sink.pending),
        flush_lag_s=lag,
        write_errors=int(stats.write_errors),
        bytes_total=int(stats.bytes_total),
        rows_total=int(stats.rows_written),
        observer_errors=int(sink.observer_errors),
        ready=ready,
        reason=reason,
    )


class RecorderCollector:
    """A ``prometheus_client`` collector of the recorder's metrics (:data:`METRICS`).

    Parameters
    ----------
    rows : RowMetrics
        The row observer fed by the recorder's sink.
    now_ns : callable
        The recorder's clock (ns since the epoch): the moment each scrape is evaluated at.
    health : callable
        Returns the :class:`CaptureHealth` now.
    refused : callable
        Returns the handshakes refused so far.
    """

    def __init__(
        self,
        rows: RowMetrics,
        *,
        now_ns: Callable[[], int],
        health: Callable[[], CaptureHealth],
        refused: Callable[[], int],
    ) -> None:
        self.rows = rows
        self.now_ns = now_ns
        self.health = health
        self.refused = refused
        require_prometheus_client()
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        self._classes = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily, "histogram": HistogramMetricFamily}
        self._to_go = floatToGoString

    def describe(self) -> list[Any]:
        """No families up front: registering never runs a scrape."""
        return []

    def collect(self) -> Iterator[Any]:
        """The metric families at this moment."""
        snap = self.rows.snapshot(self.now_ns())

        def family(name: str, **kwargs: Any) -> Any:
            kind, labels, text = METRICS[name]
            return self._classes[kind](name, text, labels=list(labels) or None, **kwargs)

        frames = family("wsreplay_frames_total")
        for (ep, d, name), n in sorted(snap.frames.items()):
            frames.add_metric([ep, d, name], n)
        yield frames
        conns = family("wsreplay_connections_open")
        for ep in sorted({"outpost", "client", *snap.connections_open}):
            conns.add_metric([ep], snap.connections_open.get(ep, 0))
        yield conns
        inst = family("wsreplay_outpost_instances_connected")
        hello = family("wsreplay_outpost_last_hello_timestamp_seconds")
        up = family("wsreplay_outpost_up")
        for s in snap.outposts:
            inst.add_metric([s.outpost], s.instances_connected)
            if s.last_hello_ns is not None:
                hello.add_metric([s.outpost], s.last_hello_ns / 1e9)
            if s.up is not None:
                up.add_metric([s.outpost], 1 if s.up else 0)
        yield inst
        yield hello
        yield up
        latency = family("wsreplay_ack_latency_seconds", unit="seconds")
        to_go = self._to_go
        for ep, (buckets, total, _count) in sorted(snap.latency.items()):
            latency.add_metric([ep], buckets=[(to_go(b), n) for b, n in buckets], sum_value=total)
        yield latency
        notices = family("wsreplay_notices_total")
        for level, n in sorted(snap.notices.items()):
            notices.add_metric([level], n)
        yield notices
        yield family("wsreplay_handshakes_refused_total", value=self.refused())
        yield family("wsreplay_outposts_tracked", value=len(snap.outposts))
        h = self.health()
        yield family("wsreplay_capture_pending_rows", value=h.pending_rows)
        yield family("wsreplay_capture_flush_lag_seconds", value=h.flush_lag_s, unit="seconds")
        yield family("wsreplay_capture_write_errors_total", value=h.write_errors)
        yield family("wsreplay_capture_bytes_total", value=h.bytes_total)
        yield family("wsreplay_capture_rows_total", value=h.rows_total)
        yield family("wsreplay_capture_ready", value=1 if h.ready else 0)
        yield family("wsreplay_metrics_observer_errors_total", value=h.observer_errors)


def render_openmetrics(families: Iterable[Any]) -> bytes:
    """The OpenMetrics text of *families* (``prometheus_client`` metric families), ``# EOF`` included.

    The same series and values as ``prometheus_client``'s own OpenMetrics
    encoder for the names and labels exported here (all valid legacy names; the
    tests parse both and compare), several times faster: that encoder's
    per-character escaping of label names dominates a scrape of 10,000 outposts
    (see ``BENCHMARKS.md``), and a scrape holds the GIL the relay needs.
    """
    out: list[str] = []
    for family in families:
        name = family.name
        out.append(f"# HELP {name} {_escape(family.documentation)}\n# TYPE {name} {family.type}\n")
        if family.unit:
            out.append(f"# UNIT {name} {family.unit}\n")
        for sample in family.samples:
            if sample.labels:
                labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items()))
                out.append(f"{sample.name}{{{labels}}} {_number(sample.value)}\n")
            else:
                out.append(f"{sample.name} {_number(sample.value)}\n")
    out.append("# EOF\n")
    return "".join(out).encode()


def _escape(text: str) -> str:
    if "\\" in text or "\n" in text or '"' in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return text


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
