"""The recorder's clock: wall time anchored once, advanced by a monotonic clock.

Capture timestamps must never jump backwards when NTP steps the system clock,
yet must read as real UTC times. :class:`WallClock` reads the wall clock once at
start and adds the monotonic time elapsed since.
"""

from __future__ import annotations

import time

__all__ = ["WallClock"]


class WallClock:
    """Nanoseconds since the epoch (UTC), anchored at creation, monotonic afterwards.

    Examples
    --------
    >>> clock = WallClock()
    >>> a = clock.now_ns(); b = clock.now_ns()
    >>> b >= a
    True
    """

    __slots__ = ("_anchor_mono", "_anchor_wall")

    def __init__(self) -> None:
        self._anchor_wall = time.time_ns()
        self._anchor_mono = time.monotonic_ns()

    def now_ns(self) -> int:
        """Current time in ns since the epoch (UTC)."""
        return self._anchor_wall + (time.monotonic_ns() - self._anchor_mono)

    @property
    def anchors(self) -> tuple[int, int]:
        """``(wall, monotonic)`` ns at creation: :meth:`now_ns` is ``wall + (time.monotonic_ns() - monotonic)``."""
        return self._anchor_wall, self._anchor_mono

    def monotonic(self) -> float:
        """Seconds of the underlying monotonic clock (for intervals)."""
        return time.monotonic()
