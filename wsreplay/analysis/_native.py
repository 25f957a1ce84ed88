"""The compiled kernels of the analyses (:mod:`wsreplay.analysis._kernels`), or ``None``.

They are built by the install when a C compiler is there (``setup.py``);
without them every analysis runs its numpy version, with the same results
(``tests/analysis/test_kernels.py``). ``WSREPLAY_NO_KERNELS=1`` turns them
off (to compare both, or to rule them out).
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["kernels"]

kernels: ModuleType | None = None
if not os.environ.get("WSREPLAY_NO_KERNELS"):
    try:
        from . import _kernels as kernels
    except ImportError:  # not compiled: numpy
        kernels = None
