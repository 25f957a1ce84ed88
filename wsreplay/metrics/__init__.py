"""Live metrics: the recorder as a Prometheus target (``record --metrics HOST:PORT``).

:mod:`~wsreplay.metrics.health` and :mod:`~wsreplay.metrics.latency` are the
sans-I/O core (the analysis' rules, fed with recorded rows, evaluated at a
moment passed in); :mod:`~wsreplay.metrics.rows` turns the tables the recorder
writes into their input; :mod:`~wsreplay.metrics.exposition` (needs the
``prometheus-client`` package, extra ``wsreplay[metrics]``) and
:mod:`~wsreplay.metrics.server` serve them over HTTP.
"""

from __future__ import annotations

from .health import FleetHealth, OutpostState
from .latency import AckPairing, Histogram
from .rows import RowMetrics

__all__ = ["FleetHealth", "OutpostState", "AckPairing", "Histogram", "RowMetrics"]
