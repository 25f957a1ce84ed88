# Per-connection passes of the analyses in C (_kernels.c); latency.py has the numpy equivalents.
from typing import Any

import numpy as np

__all__ = ["group_refreshes", "pair_next"]

def pair_next(
    conn: np.ndarray[Any, Any],
    cls: np.ndarray[Any, Any],
    ts: np.ndarray[Any, Any],
    n_conn: int,
    out: np.ndarray[Any, Any],
    /,
) -> int: ...
def group_refreshes(
    key: np.ndarray[Any, Any],
    need: np.ndarray[Any, Any],
    cls: np.ndarray[Any, Any],
    conn: np.ndarray[Any, Any],
    ts: np.ndarray[Any, Any],
    n_keys: int,
    /,
) -> tuple[bytearray, bytearray, bytearray, bytearray, bytearray]: ...
