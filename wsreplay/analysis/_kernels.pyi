# The analyses' passes in C (_kernels.c); each has its numpy version beside its caller (see _native.py).
from typing import Any

import numpy as np

__all__ = [
    "classify",
    "count_refreshes",
    "group_cummax",
    "group_refreshes",
    "is_sorted",
    "pair_next",
    "run_medians",
    "take_codes",
    "up_periods",
    "valid_gaps",
]

def pair_next(
    conn: np.ndarray[Any, Any],
    cls: np.ndarray[Any, Any],
    ts: np.ndarray[Any, Any],
    n_conn: int,
    part_frames: np.ndarray[Any, Any],
    ack: np.ndarray[Any, Any],
    pos: np.ndarray[Any, Any],
    sent: np.ndarray[Any, Any],
    latency: np.ndarray[Any, Any],
    /,
) -> tuple[int, int]: ...
def count_refreshes(
    key: np.ndarray[Any, Any],
    need: np.ndarray[Any, Any],
    cls: np.ndarray[Any, Any],
    conn: np.ndarray[Any, Any],
    counts: np.ndarray[Any, Any],
    /,
) -> int: ...
def group_refreshes(
    key: np.ndarray[Any, Any],
    need: np.ndarray[Any, Any],
    cls: np.ndarray[Any, Any],
    conn: np.ndarray[Any, Any],
    ts: np.ndarray[Any, Any],
    counts: np.ndarray[Any, Any],
    rows: np.ndarray[Any, Any],
    t: np.ndarray[Any, Any],
    conn_out: np.ndarray[Any, Any],
    hello: np.ndarray[Any, Any],
    /,
) -> None: ...
def is_sorted(a: np.ndarray[Any, Any], /) -> bool: ...
def group_cummax(values: np.ndarray[Any, Any], first: np.ndarray[Any, Any], /) -> None: ...
def valid_gaps(
    inst: np.ndarray[Any, Any],
    ts: np.ndarray[Any, Any],
    conn: np.ndarray[Any, Any],
    valid: np.ndarray[Any, Any],
    v_pos: np.ndarray[Any, Any],
    v_gap: np.ndarray[Any, Any],
    v_inst: np.ndarray[Any, Any],
    /,
) -> int: ...
def classify(
    event: np.ndarray[Any, Any],
    direction: np.ndarray[Any, Any],
    name: np.ndarray[Any, Any],
    table: np.ndarray[Any, Any],
    out: np.ndarray[Any, Any],
    parts: int,
    /,
) -> None: ...
def take_codes(
    codes: np.ndarray[Any, Any],
    idx: np.ndarray[Any, Any] | None,
    out: np.ndarray[Any, Any] | None,
    used: np.ndarray[Any, Any],
    parts: int,
    /,
) -> bool: ...
def run_medians(
    values: np.ndarray[Any, Any], starts: np.ndarray[Any, Any], out: np.ndarray[Any, Any], parts: int, /
) -> None: ...
def up_periods(
    g: np.ndarray[Any, Any],
    t: np.ndarray[Any, Any],
    conn: np.ndarray[Any, Any],
    e: np.ndarray[Any, Any],
    conn_end: np.ndarray[Any, Any],
    observed: bool,
    by_conn: np.ndarray[Any, Any],
    first: np.ndarray[Any, Any],
    cm: np.ndarray[Any, Any],
    gap: np.ndarray[Any, Any],
    /,
) -> int: ...
