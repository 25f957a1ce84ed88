"""The compiled kernels of the analyses (:mod:`wsreplay.analysis._kernels`), or ``None``.

They are built by the install when a C compiler is there (``setup.py``);
without them every analysis runs its numpy version, with the same results
(``tests/analysis/test_kernels.py``). ``WSREPLAY_NO_KERNELS=1`` turns them
off (to compare both, or to rule them out).

Kernels that release the GIL and whose rows can be cut into parts run each
part on its own thread: :func:`parts` says how many.
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["kernels", "parts"]

#: Rows below which a kernel runs on one thread (starting threads costs more than it saves).
PART_MIN_ROWS = 1 << 20
#: The most threads a kernel uses (the C side allows 16).
MAX_PARTS = 4

kernels: ModuleType | None = None
if not os.environ.get("WSREPLAY_NO_KERNELS"):
    try:
        from . import _kernels as kernels
    except ImportError:  # not compiled: numpy
        kernels = None


def parts(n_rows: int) -> int:
    """How many threads a kernel cuts *n_rows* into: one per CPU this process may run on, at most :data:`MAX_PARTS`."""
    if n_rows < PART_MIN_ROWS:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_PARTS, cpus))
