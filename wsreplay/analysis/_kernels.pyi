# Per-connection passes of the analyses in C (_kernels.c); latency.py has the numpy equivalents.
from typing import Any

import numpy as np

__all__ = ["count_refreshes", "group_cummax", "group_refreshes", "is_sorted", "pair_next", "valid_gaps"]

def pair_next(
    conn: np.ndarray[Any, Any],
    cls: np.ndarray[Any, Any],
    ts: np.ndarray[Any, Any],
    n_conn: int,
    out: np.ndarray[Any, Any],
    /,
) -> int: ...
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
