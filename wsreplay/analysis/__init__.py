"""Analysis of captures: pure pandas functions over the frames DataFrame.

Every function takes the frames DataFrame (as returned by :func:`wsreplay.load`)
first and everything else keyword-only, never modifies its input, and returns a
DataFrame with documented columns, so they compose with ``df.pipe``::

    frames = wsreplay.load("capture/", columns=wsreplay.analysis.columns_for("outages", "ack_latency"))
    frames.pipe(wsreplay.outages, level="outpost")

Results with one row per frame (:func:`hello_intervals`, :func:`ack_latency`)
keep the id columns (``conn_id``, ``outpost_uuid``, ``instance_uuid``)
categorical, as in the frames; summary tables (outages, uptime, fleet...) use
plain strings. Group categoricals with ``observed=True``.

The definitions (expected interval, up/down, policies, causes, levels, window)
are in :mod:`wsreplay.analysis.coverage`; ACK pairing in
:mod:`wsreplay.analysis.latency`.

**One kernel for every engine.** The outpost analyses (:func:`outages`,
:func:`uptime`, :func:`ack_latency`, :func:`hello_intervals`, :func:`fleet`,
...) are functions of the frames of some outposts and, for the timeline, of
the capture's window (``span=``, :func:`wsreplay.store.span.capture_span`):
the single pass is that function on one partition (all outposts, its own
span), the report's groups and Dask's partitions (outpost buckets,
:mod:`wsreplay.store.buckets`) call the same function on each bucket with the
capture's span, and the rows of the parts, concatenated, are those of the
single pass (``tests/analysis/test_coverage.py`` holds them to it).

**Shared work.** Calls on the same frames share what they compute
(:mod:`wsreplay.analysis._cache`): the outpost rows every analysis reads,
and the outage timeline, so :func:`uptime` after :func:`outages` with the
same parameters does not compute it again. The latest frames' share is kept
(about the size of the analysis columns) until those frames are freed;
modified frames are analysed anew.
"""

from __future__ import annotations

from typing import Final

from .availability import uptime
from .coverage import CAUSES, LEVELS, OUTAGE_COLUMNS, POLICIES
from .errors import PARSE_ERROR_COLUMNS, parse_errors
from .hello import HELLO_COLUMNS, hello_intervals
from .inventory import FLEET_COLUMNS, fleet, restarts, upgrades
from .latency import LATENCY_COLUMNS, ack_latency, latency_percentiles
from .notices import NOTICE_COLUMNS, notice_frequency, top_messages
from .outage_table import outages
from .trigger import TRIGGER_COLUMNS, trigger_fanout

__all__ = [
    "COLUMNS_NEEDED",
    "CAUSES",
    "LEVELS",
    "POLICIES",
    "columns_for",
    "hello_intervals",
    "outages",
    "uptime",
    "ack_latency",
    "latency_percentiles",
    "notice_frequency",
    "top_messages",
    "fleet",
    "restarts",
    "upgrades",
    "trigger_fanout",
    "parse_errors",
]

#: The capture columns each analysis function reads: pass them to ``wsreplay.load(columns=...)``
#: to read only what is needed (optional ones may be left out; see each function).
COLUMNS_NEEDED: Final[dict[str, tuple[str, ...]]] = {
    "hello_intervals": HELLO_COLUMNS,
    "outages": OUTAGE_COLUMNS,
    "uptime": OUTAGE_COLUMNS,
    "ack_latency": LATENCY_COLUMNS,
    "latency_percentiles": LATENCY_COLUMNS,
    "notice_frequency": NOTICE_COLUMNS,
    "top_messages": NOTICE_COLUMNS,
    "fleet": FLEET_COLUMNS,
    "restarts": FLEET_COLUMNS,
    "upgrades": FLEET_COLUMNS,
    "trigger_fanout": TRIGGER_COLUMNS,
    "parse_errors": PARSE_ERROR_COLUMNS,
}


def columns_for(*functions: str) -> list[str]:
    """The union of :data:`COLUMNS_NEEDED` of *functions* (all of them when none is named), in capture order.

    Examples
    --------
    >>> columns_for("ack_latency")
    ['ts', 'conn_id', 'outpost_uuid', 'instance_uuid', 'event', 'direction', 'instruction', 'instruction_name']
    """
    from ..exceptions import ConfigurationError
    from ..schema import COLUMNS

    names = functions or tuple(COLUMNS_NEEDED)
    unknown = [f for f in names if f not in COLUMNS_NEEDED]
    if unknown:
        raise ConfigurationError(f"no analysis function {unknown}; known: {sorted(COLUMNS_NEEDED)}")
    wanted = {c for f in names for c in COLUMNS_NEEDED[f]}
    return [c for c in COLUMNS if c in wanted]
