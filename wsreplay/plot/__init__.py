"""Plots of the analysis results (seaborn style: ``plot_x(data, *, ax=None, **kwargs) -> Axes``).

Each function takes the frames DataFrame (:func:`wsreplay.load`) or the
result of the matching analysis function, draws on *ax* (or the current axes)
and returns it. None of them calls ``plt.show()``; every number drawn comes
from :mod:`wsreplay.analysis`.
"""

from __future__ import annotations

from .fanout import plot_trigger_fanout
from .hello import plot_hello_intervals
from .latency import plot_ack_latency
from .notices import plot_notices
from .uptime import plot_uptime

__all__ = ["plot_uptime", "plot_ack_latency", "plot_notices", "plot_hello_intervals", "plot_trigger_fanout"]
