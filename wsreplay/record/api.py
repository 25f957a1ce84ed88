"""The recorder's Python API: ``async with Recorder(...)`` and the blocking ``start_recording``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._background import ServiceThread
from ..address import parse_listen
from ..exceptions import CaptureNotFoundError, ConfigurationError
from ..store.writer import CaptureWriter
from .clock import WallClock
from .proxy import DEFAULT_MAX_SIZE, RecordingProxy
from .sink import RowSink
from .stats import RecorderStats
from .upstream import Upstream

if TYPE_CHECKING:  # reading the capture back needs pandas; relaying and writing do not
    import pandas as pd

__all__ = ["Recorder", "RecordingHandle", "start_recording"]


class Recorder:
    """A recording proxy in front of authentik (async context manager).

    Point outposts (``AUTHENTIK_HOST``) and browsers at :attr:`url`: WebSocket
    connections are relayed to *upstream* and every frame is recorded into
    *out*; plain HTTP requests are passed through.

    Parameters
    ----------
    upstream : str
        Base URL of authentik, ``http(s)://`` or ``ws(s)://``.
    out : path
        Capture directory (created if missing).
    listen : str or (host, port), optional
        Where to listen; ``"127.0.0.1:0"`` (a free port on loopback) by default.
    flush_interval : float
        Seconds; a crash loses at most this much of the capture.
    insecure : bool
        Do not verify an https upstream's certificate.
    ca_file : str, optional
        CA bundle to verify the upstream with.
    max_size : int
        Largest frame or message relayed (bytes); a bigger one is refused
        (close 1009 both ways) and recorded as an ``error`` row.
    capture_id : str, optional
        Id of this recording run (segment files are named after it).
    rewrite_host : bool
        Send the upstream's address as ``Host`` instead of the peer's. Off by default:
        authentik picks the tenant (brand) by ``Host``, so a transparent recorder passes it
        unchanged; the peer's ``Host`` always also goes in ``X-Forwarded-Host``.
    metrics : str or (host, port), optional
        Serve live metrics (OpenMetrics at ``/metrics``, readiness at
        ``/-/ready``) on this ``HOST:PORT``; needs ``wsreplay[metrics]``. See
        ``README.md`` ("Live metrics") for the series.
    metrics_retention : float
        Seconds an outpost stays in the outpost series after its last
        connection ended (default one day): bounds their number.

    Examples
    --------
    >>> async def main():  # doctest: +SKIP
    ...     async with wsreplay.Recorder(upstream="https://authentik.example", out="cap") as rec:
    ...         print(rec.url)  # give this to outposts as AUTHENTIK_HOST
    ...         await asyncio.sleep(3600)
    """

    def __init__(
        self,
        upstream: str,
        *,
        out: str | os.PathLike[str],
        listen: str | tuple[str, int] | None = None,
        flush_interval: float = 1.0,
        insecure: bool = False,
        ca_file: str | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        capture_id: str | None = None,
        rewrite_host: bool = False,
        metrics: str | tuple[str, int] | None = None,
        metrics_retention: float = 86_400.0,
    ) -> None:
        if flush_interval <= 0:
            raise ConfigurationError("flush_interval must be > 0 seconds")
        if max_size <= 0:
            raise ConfigurationError("max_size must be > 0 bytes")
        self.upstream = Upstream(str(upstream), insecure=insecure, ca_file=ca_file)
        self.out = Path(out)
        self.flush_interval = flush_interval
        self._listen = parse_listen(listen)
        self._max_size = max_size
        self._capture_id = capture_id
        self._rewrite_host = rewrite_host
        self._proxy: RecordingProxy | None = None
        self._sink: RowSink | None = None
        self.clock = WallClock()
        self._metrics_listen = _metrics_listen(metrics)
        self._metrics_retention = metrics_retention
        self._metrics: Any = None  # the MetricsServer while running
        self._row_metrics: Any = None
        if self._metrics_listen is not None:
            from ..metrics.exposition import require_prometheus_client

            require_prometheus_client()
            if not metrics_retention > 0:
                raise ConfigurationError("metrics_retention must be > 0 seconds")

    # --------------------------------------------------------------- lifecycle

    async def start(self) -> Recorder:
        """Open the capture and start listening."""
        if self._proxy is not None:
            return self
        writer = CaptureWriter(
            self.out, capture_id=self._capture_id, flush_interval=self.flush_interval, autoflush=False
        )
        observers = []
        if self._metrics_listen is not None:
            from ..metrics.rows import RowMetrics

            self._row_metrics = RowMetrics(retention=self._metrics_retention)
            observers.append(self._row_metrics)
        self._sink = RowSink(writer, flush_interval=self.flush_interval, observers=observers)
        proxy = RecordingProxy(
            self.upstream,
            put=self._sink.put,
            capture_id=writer.capture_id,
            clock=self.clock,
            max_size=self._max_size,
            rewrite_host=self._rewrite_host,
        )
        try:
            await proxy.start(*self._listen)
        except OSError as exc:
            await asyncio.to_thread(self._sink.close)
            self._sink = None
            raise ConfigurationError(f"cannot listen on {self._listen[0]}:{self._listen[1]}: {exc.strerror}") from exc
        self._proxy = proxy
        if self._metrics_listen is not None:
            try:
                self._metrics = self._serve_metrics(*self._metrics_listen)
            except BaseException:
                await self.stop()
                raise
        return self

    def _serve_metrics(self, host: str, port: int) -> Any:
        from prometheus_client import CollectorRegistry

        from ..metrics.exposition import RecorderCollector
        from ..metrics.server import MetricsServer

        registry = CollectorRegistry(auto_describe=False)
        registry.register(
            RecorderCollector(
                self._row_metrics,
                now_ns=self.clock.now_ns,
                health=self.health,
                refused=lambda: self._proxy.stats.refused if self._proxy is not None else 0,
            )
        )
        return MetricsServer(registry, self._ready, host, port)

    def health(self) -> Any:
        """The recorder's own health now (:class:`wsreplay.metrics.exposition.CaptureHealth`)."""
        from ..metrics.exposition import capture_health

        return capture_health(self._sink, running=self._proxy is not None, flush_interval=self.flush_interval)

    def _ready(self) -> tuple[bool, str]:
        h = self.health()
        return h.ready, h.reason

    async def stop(self) -> None:
        """Stop accepting, close connections with 1001, seal the capture."""
        if self._proxy is not None:
            await self._proxy.close()
        self._proxy = None
        if self._sink is not None:
            await asyncio.to_thread(self._sink.close)
        if self._metrics is not None:
            await asyncio.to_thread(self._metrics.close)
            self._metrics = None

    async def __aenter__(self) -> Recorder:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -------------------------------------------------------------- inspection

    @property
    def capture_id(self) -> str:
        """Id of this recording run."""
        if self._sink is None:
            raise RuntimeError("the recorder has not started")
        return self._sink.writer.capture_id

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` listened on."""
        if self._proxy is None:
            raise RuntimeError("the recorder is not running")
        return self._proxy.address

    @property
    def url(self) -> str:
        """``http://host:port`` of the listening side (what outposts use as AUTHENTIK_HOST)."""
        host, port = self.address
        return f"http://{_url_host(host)}:{port}"

    @property
    def ws_url(self) -> str:
        """``ws://host:port`` of the listening side."""
        host, port = self.address
        return f"ws://{_url_host(host)}:{port}"

    @property
    def stats(self) -> RecorderStats:
        """Live counters (connections, frames, bytes, errors)."""
        if self._proxy is None:
            raise RuntimeError("the recorder is not running")
        return self._proxy.stats

    @property
    def metrics_url(self) -> str | None:
        """``http://host:port`` of the metrics endpoint (``/metrics``, ``/-/ready``), ``None`` without one."""
        return self._metrics.url if self._metrics is not None else None

    @property
    def sink(self) -> RowSink:
        """The row buffer in front of the capture writer (pending rows, flush lag)."""
        if self._sink is None:
            raise RuntimeError("the recorder has not started")
        return self._sink

    def flush(self) -> bool:
        """Write everything recorded so far to the in-progress segment (blocking, any thread)."""
        return self.sink.flush()

    def frames(self, **load_kwargs: Any) -> pd.DataFrame:
        """Everything captured so far, in-progress segment included (flushes first; blocking)."""
        self.flush()
        return load_or_empty(self.out, **load_kwargs)


def load_or_empty(out: Path, **load_kwargs: Any) -> pd.DataFrame:
    """``load(out)``, or an empty frames DataFrame while nothing has been captured yet."""
    from ..store.reader import load

    try:
        return load(out, **load_kwargs)
    except CaptureNotFoundError:
        if out.exists():
            from ..schema import empty_frames

            return empty_frames()
        raise


def _metrics_listen(metrics: str | tuple[str, int] | None) -> tuple[str, int] | None:
    if metrics is None:
        return None
    return parse_listen(metrics, option="--metrics")


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


class RecordingHandle:
    """A :class:`Recorder` running on its own event loop in a background thread.

    Returned by :func:`start_recording`; works the same from a script and
    inside a Jupyter kernel (whose loop is never touched).
    """

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._stopped = False
        self._service = ServiceThread(recorder.start, recorder.stop, name="the recorder")

    @property
    def url(self) -> str:
        """``http://host:port`` to give outposts and browsers."""
        return self.recorder.url

    @property
    def ws_url(self) -> str:
        return self.recorder.ws_url

    @property
    def out(self) -> Path:
        """The capture directory."""
        return self.recorder.out

    @property
    def stats(self) -> RecorderStats:
        return self.recorder.stats

    @property
    def metrics_url(self) -> str | None:
        """``http://host:port`` of the live metrics endpoint, ``None`` without one."""
        return self.recorder.metrics_url

    def frames(self, **load_kwargs: Any) -> pd.DataFrame:
        """A live DataFrame of everything captured so far (in-progress segment included)."""
        if self._stopped:
            return load_or_empty(self.recorder.out, **load_kwargs)
        return self.recorder.frames(**load_kwargs)

    def stop(self) -> pd.DataFrame:
        """Stop recording (connections closed with 1001, segments sealed); return the frames."""
        if not self._stopped:
            self._stopped = True
            self._service.stop(timeout=None)
        return load_or_empty(self.recorder.out)

    def __enter__(self) -> RecordingHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else f"recording at {self.recorder.url}"
        return f"<RecordingHandle {state} -> {self.recorder.out}>"


def start_recording(
    upstream: str,
    *,
    out: str | os.PathLike[str],
    listen: str | tuple[str, int] | None = None,
    flush_interval: float = 1.0,
    insecure: bool = False,
    ca_file: str | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    capture_id: str | None = None,
    rewrite_host: bool = False,
    metrics: str | tuple[str, int] | None = None,
    metrics_retention: float = 86_400.0,
) -> RecordingHandle:
    """Start a recording proxy in the background and return at once (blocking twin of :class:`Recorder`).

    The recorder runs on its own event loop in a daemon thread, so this works
    in a plain script and inside a running Jupyter kernel alike. Parameters
    are those of :class:`Recorder`.

    Returns
    -------
    RecordingHandle
        ``.url`` to point outposts at, ``.frames()`` for a live DataFrame,
        ``.stop()`` to finish (also a context manager).

    Examples
    --------
    >>> rec = wsreplay.start_recording("https://authentik.example", out="cap")  # doctest: +SKIP
    >>> rec.url  # doctest: +SKIP
    'http://127.0.0.1:40123'
    >>> rec.frames().tail()  # doctest: +SKIP
    >>> rec.stop()  # doctest: +SKIP
    """
    recorder = Recorder(
        upstream,
        out=out,
        listen=listen,
        flush_interval=flush_interval,
        insecure=insecure,
        ca_file=ca_file,
        max_size=max_size,
        capture_id=capture_id,
        rewrite_host=rewrite_host,
        metrics=metrics,
        metrics_retention=metrics_retention,
    )
    return RecordingHandle(recorder)
