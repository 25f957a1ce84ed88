"""What a caller hands to replay or serve (a capture path, frames, or a ready plan) as a ReplayPlan.

The client runner (:func:`~wsreplay.replay`) and the server (:class:`~wsreplay.ReplayServer`) take
the same inputs and the same filters; this is the one place that turns them into a plan.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from ..exceptions import ConfigurationError
from ..store import load
from .schedule import build_plan
from .script import ReplayPlan

__all__ = ["CaptureLike", "plan_of"]

#: A capture directory or file, frames from :func:`wsreplay.load`, or a ready plan.
CaptureLike = str | os.PathLike[str] | pd.DataFrame | ReplayPlan


def plan_of(
    capture: CaptureLike,
    *,
    endpoint: str | Sequence[str] | None = None,
    outpost: str | Sequence[str] | None = None,
    connection: str | Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    mapping: Mapping[str, str] | Iterable[str] | None = None,
) -> ReplayPlan:
    """The plan of *capture*, built with the filters (see :func:`~wsreplay.playback.schedule.build_plan`).

    A ready plan is returned as it is; filters given with one are refused, since they apply when a
    plan is built.
    """
    filters = {"endpoint": endpoint, "outpost": outpost, "connection": connection, "start": start, "end": end}
    if isinstance(capture, ReplayPlan):
        if mapping is not None or any(v is not None for v in filters.values()):
            raise ConfigurationError("filters and mapping apply when building a plan: pass a capture, not a plan")
        return capture
    frames = capture if isinstance(capture, pd.DataFrame) else load(capture)
    return build_plan(frames, mapping=mapping, **filters)
