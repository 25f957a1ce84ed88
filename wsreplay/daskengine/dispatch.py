"""How each public analysis function runs on a Dask DataFrame of outpost partitions.

Two strategies, both exact:

* **per partition** (``outages``, ``uptime``, ``hello_intervals``,
  ``ack_latency``, ``fleet``, ``restarts``, ``upgrades``, ``trigger_fanout``,
  and ``latency_percentiles`` grouped by an outpost, instance or connection):
  every result row belongs to one outpost, and all of an outpost's rows are in
  one partition, so the pandas function runs on each partition (on the
  workers, with the capture's window as ``span=`` where it takes one) and the
  results are concatenated and put in the documented order
  (:mod:`wsreplay.daskengine.combine`).
* **gather** (``notice_frequency``, ``top_messages``, ``parse_errors``, and
  fleet-wide ``latency_percentiles``): the result mixes outposts, so each
  partition is reduced on its worker to the rows the function needs (the
  browser notices; the frames that did not decode; one ``(sent_ts,
  latency_s)`` per frame for latency percentiles), and the pandas function
  runs once on their concatenation. Percentiles are exact only over every
  latency of a bin, so a fleet-wide ``latency_percentiles`` brings 16 bytes per
  outpost frame to the client (a week of 1,000 outposts: about 1 GB); per
  outpost (the default ``by``) it stays on the workers.

Computations go through ``dask.compute``: the current scheduler, a
``distributed.Client`` if one exists. The library never creates a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from .combine import concat_results, sort_rows
from .window import frame_window

__all__ = ["run", "STRATEGIES"]

Strategy = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

#: Keys that put every row of a result in one outpost (so in one partition).
_OUTPOST_KEYS = frozenset({"outpost_uuid", "instance_uuid", "conn_id"})


def _apply(fn: Callable[..., Any], part: pd.DataFrame, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return fn(part, *args, **kwargs)


def _map(fn: Callable[..., Any], frames: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    import dask

    tasks = [dask.delayed(_apply, pure=True)(fn, p, args, kwargs) for p in frames.to_delayed()]
    return list(dask.compute(*tasks))


def _with_span(frames: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    kw = dict(kwargs)
    if kw.get("span") is None:
        w = frame_window(frames)
        if w is not None:
            kw["span"] = (pd.Timestamp(w[0], unit="ns", tz="UTC"), pd.Timestamp(w[1], unit="ns", tz="UTC"))
    return kw


def per_partition(keys: Sequence[str], *, span: bool = False, keep_categories: Sequence[str] = ()) -> Strategy:
    """Run the function on every partition, concatenate, sort stably by *keys*."""

    def strategy(fn: Callable[..., Any], frames: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        kw = _with_span(frames, kwargs) if span else dict(kwargs)
        out = concat_results(_map(fn, frames, args, kw), keep_categories=keep_categories)
        return sort_rows(out, keys)

    return strategy


def _rows_where(part: pd.DataFrame, column: str, value: str | None) -> pd.DataFrame:
    if column not in part.columns:
        return part
    s = part[column]
    mask = s.notna() if value is None else (s.astype("str") == value) & s.notna()
    return part.loc[mask.to_numpy()]


def gather(column: str, value: str | None) -> Strategy:
    """Reduce every partition to the rows where *column* is *value* (or not null), then one pandas pass."""

    def strategy(fn: Callable[..., Any], frames: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        import dask

        tasks = [dask.delayed(_rows_where, pure=True)(p, column, value) for p in frames.to_delayed()]
        rows = sort_rows(concat_results(list(dask.compute(*tasks))), ["ts", "seq"])
        return fn(rows, *args, **kwargs)

    return strategy


def _latency_rows(part: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    from ..analysis.latency import ack_latency

    lat = ack_latency(part)
    return lat[[*keys, "sent_ts", "latency_s"]]


def _latency_percentiles(fn: Callable[..., Any], frames: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    by = kwargs.get("by", "outpost_uuid")
    keys: list[str] = [] if by is None else ([by] if isinstance(by, str) else list(by))
    if _OUTPOST_KEYS.intersection(keys):
        order = [*keys, "time"] if kwargs.get("freq") is not None else keys
        return per_partition(order)(fn, frames, args, kwargs)
    import dask

    tasks = [dask.delayed(_latency_rows, pure=True)(p, keys) for p in frames.to_delayed()]
    lat = sort_rows(concat_results(list(dask.compute(*tasks))), ["sent_ts"])
    return fn(lat, *args, **kwargs)


_INSTANCE_ORDER = ("outpost_uuid", "instance_uuid")

#: How each public analysis function combines its partitions.
STRATEGIES: dict[str, Strategy] = {
    "outages": per_partition(("start", "outpost_uuid"), span=True, keep_categories=("cause",)),
    "uptime": per_partition(_INSTANCE_ORDER, span=True),
    "hello_intervals": per_partition(_INSTANCE_ORDER),
    "ack_latency": per_partition(("sent_ts", "outpost_uuid")),
    "fleet": per_partition(("outpost_uuid", "first_seen")),
    "restarts": per_partition(("ts", "outpost_uuid")),
    "upgrades": per_partition(("ts", "outpost_uuid")),
    "trigger_fanout": per_partition(("push_ts", "outpost_uuid", "delay_s")),
    "latency_percentiles": _latency_percentiles,
    "notice_frequency": gather("endpoint", "client"),
    "top_messages": gather("endpoint", "client"),
    "parse_errors": gather("parse_error", None),
}


def run(name: str, fn: Callable[..., Any], frames: Any, *args: Any, **kwargs: Any) -> Any:
    """Run the public analysis function *fn* (registered as *name*) on the Dask DataFrame *frames*."""
    return STRATEGIES[name](fn, frames, args, kwargs)
