"""Building the replay scripts of a capture, without I/O.

:func:`build_plan` reads the frames DataFrame of a capture and returns a
:class:`~wsreplay.playback.script.ReplayPlan`: one script per recorded
connection (see :mod:`~wsreplay.playback.script` for what a script holds and
which server frames are replies). Filters (endpoint, outpost, connection, time
window) and the ``--map OLD=NEW`` outpost mapping are applied here; speed is
applied when a driver asks for a time (:func:`scale`).

Nothing here reads a clock, opens a socket or starts a loop.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import pandas as pd

from ..exceptions import ConfigurationError
from ..timeutil import to_ns
from .assemble import CaptureRows, assemble
from .script import ReplayPlan

__all__ = [
    "MAX_SPEED",
    "MIN_SPEED",
    "build_plan",
    "parse_speed",
    "parse_mapping",
    "scale",
]

#: Slowest and fastest finite ``speed`` factors.
MIN_SPEED: Final = 0.1
MAX_SPEED: Final = 1000.0
_PK_RE: Final = re.compile(r"^[^/?#\s]+$")


def parse_speed(value: str | float | None) -> float:
    """Check a speed factor; ``"max"`` (or ``inf``) means as fast as possible.

    Returns
    -------
    float
        The factor, ``math.inf`` for ``max``.

    Raises
    ------
    ConfigurationError
        If the value is not a number in 0.1..1000 or ``max``.

    Examples
    --------
    >>> parse_speed("2"), parse_speed("max")
    (2.0, inf)
    """
    if value is None:
        return 1.0
    if isinstance(value, str):
        if value.strip().lower() == "max":
            return math.inf
        try:
            value = float(value)
        except ValueError:
            raise ConfigurationError(f"speed {value!r} is not a number; use 0.1 to 1000, or 'max'") from None
    speed = float(value)
    if speed == math.inf:
        return speed
    if not (MIN_SPEED <= speed <= MAX_SPEED):
        raise ConfigurationError(f"speed {speed:g} is out of range; use {MIN_SPEED:g} to {MAX_SPEED:g}, or 'max'")
    return speed


def scale(offset_ns: int, speed: float) -> float:
    """Seconds after the reference point at which an event recorded *offset_ns* later replays."""
    if speed == math.inf:
        return 0.0
    return offset_ns / 1e9 / speed


def parse_mapping(items: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """Parse ``OLD=NEW`` outpost pk mappings (a dict passes through, checked).

    Raises
    ------
    ConfigurationError
        If an item is not ``OLD=NEW``, a pk holds ``/``, ``?`` or spaces, or an
        old pk is mapped twice.
    """
    if items is None:
        return {}
    pairs: list[tuple[str, str]] = []
    if isinstance(items, Mapping):
        pairs = [(str(k), str(v)) for k, v in items.items()]
    else:
        for item in items:
            old, sep, new = item.partition("=")
            if not sep:
                raise ConfigurationError(f"--map {item!r}: expected OLD=NEW (recorded outpost pk = target pk)")
            if old.strip() in {o for o, _ in pairs}:
                raise ConfigurationError(f"--map: outpost {old.strip()} is mapped twice")
            pairs.append((old.strip(), new.strip()))
    for old, new in pairs:
        for pk in (old, new):
            if not _PK_RE.match(pk):
                raise ConfigurationError(f"--map {old}={new}: {pk!r} is not an outpost pk (no '/', '?' or spaces)")
    return dict(pairs)


# --------------------------------------------------------------------------- building


def _none(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    try:
        if isinstance(value, float) and math.isnan(value):
            return None
    except TypeError:
        pass
    return value


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _select(
    starts: dict[str, tuple[int, str | None, str | None]],
    *,
    endpoint: list[str] | None,
    outpost: list[str] | None,
    connection: list[str] | None,
    start: int | None,
    end: int | None,
) -> set[str]:
    selected = set(starts)
    if endpoint is not None:
        bad = [e for e in endpoint if e not in ("outpost", "client", "other")]
        if bad:
            raise ConfigurationError(f"endpoint {bad[0]!r} is not one of outpost, client, other")
        selected = {c for c in selected if starts[c][1] in endpoint}
    if outpost is not None:
        known = {v[2] for v in starts.values() if v[2]}
        unknown = [o for o in outpost if o not in known]
        if unknown:
            raise ConfigurationError(
                f"outpost {unknown[0]} is not in the capture (outposts: {', '.join(sorted(known)) or 'none'})"
            )
        selected = {c for c in selected if starts[c][2] in outpost}
    if connection is not None:
        chosen: set[str] = set()
        for prefix in connection:
            hits = [c for c in starts if c.startswith(prefix)]
            if not hits:
                raise ConfigurationError(f"connection {prefix} is not in the capture")
            if len(hits) > 1:
                raise ConfigurationError(f"connection {prefix} is ambiguous ({len(hits)} connections start with it)")
            chosen.add(hits[0])
        selected &= chosen
    if start is not None:
        selected = {c for c in selected if starts[c][0] >= start}
    if end is not None:
        selected = {c for c in selected if starts[c][0] < end}
    return selected


def build_plan(
    frames: pd.DataFrame,
    *,
    endpoint: str | Sequence[str] | None = None,
    outpost: str | Sequence[str] | None = None,
    connection: str | Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    mapping: Mapping[str, str] | Iterable[str] | None = None,
) -> ReplayPlan:
    """Build the replay scripts of a capture.

    Parameters
    ----------
    frames : pandas.DataFrame
        A capture, as returned by :func:`wsreplay.load`.
    endpoint : str or list of str, optional
        Keep connections of these endpoints (``outpost``, ``client``, ``other``).
    outpost : str or list of str, optional
        Keep connections of these (recorded) outpost pks.
    connection : str or list of str, optional
        Keep these connections (ids or unique prefixes of ids).
    start, end : time, optional
        Keep connections that opened in ``[start, end)`` (whole connections).
    mapping : dict or list of ``"OLD=NEW"``, optional
        Replay recorded outpost *OLD* as outpost *NEW* of the target.

    Returns
    -------
    ReplayPlan

    Raises
    ------
    ConfigurationError
        If a filter or mapping names something the capture does not have, or
        nothing is left to replay.

    Examples
    --------
    >>> from wsreplay.events import ConnectionLog
    >>> from wsreplay.schema import rows_to_table, table_to_frames
    >>> log = ConnectionLog("cap", "/ws/outpost/pk1/", conn_id="c1")
    >>> rows = [log.open(0), log.message(10, "to_server", '{"instruction": 1}'),
    ...         log.message(13, "to_peer", '{"instruction": 0, "args": {}}'), log.close(20, "to_server", code=1000)]
    >>> plan = build_plan(table_to_frames(rows_to_table(rows)), mapping=["pk1=pk2"])
    >>> plan.scripts[0].path, [s.label for s in plan.scripts[0].sends], plan.scripts[0].replies[0].latency_ns
    ('/ws/outpost/pk2/', ['HELLO'], 3)
    """
    rows = CaptureRows.from_frames(frames)
    starts = rows.opened()
    if not starts:
        raise ConfigurationError("the capture holds no connection to replay")
    selected = _select(
        starts,
        endpoint=_as_list(endpoint),
        outpost=_as_list(outpost),
        connection=_as_list(connection),
        start=to_ns(start, "start"),
        end=to_ns(end, "end"),
    )
    if not selected:
        raise ConfigurationError("no connection of the capture matches the filters")
    pk_map = parse_mapping(mapping)
    recorded_pks = {str(starts[c][2]) for c in selected if starts[c][2]}
    for old in pk_map:
        if old not in recorded_pks:
            raise ConfigurationError(
                f"--map {old}={pk_map[old]}: outpost {old} is not among the replayed connections "
                f"(outposts: {', '.join(sorted(recorded_pks)) or 'none'})"
            )
    order = sorted(selected, key=lambda c: (starts[c][0], c))
    start_ns = starts[order[0]][0]
    scripts = assemble(rows, order, start_ns, pk_map)
    notes = [f"connection {s.short_id} ({s.path}): {note}" for s in scripts for note in s.notes]
    return ReplayPlan(scripts=tuple(scripts), start_ns=start_ns, mapping=pk_map, notes=tuple(notes))
