"""Clocks of the replay drivers: capture timestamps and precise waits.

``asyncio.sleep`` wakes up to a millisecond late (epoll counts in whole
milliseconds). :class:`Timer` keeps one heap of deadlines for a whole replay:
it sleeps until just before the earliest one, then yields to the loop until
it is due, so thousands of connections share one short spin instead of each
spinning on its own.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time

__all__ = ["Clock", "Timer"]

_LONG_SLEEP = 0.05


class Clock:
    """Wall-clock nanoseconds anchored at creation, advanced by the monotonic clock."""

    def __init__(self) -> None:
        #: Epoch ns = this + ``time.monotonic_ns()``.
        self.wall0_minus_mono0 = time.time_ns() - time.monotonic_ns()

    def ns(self) -> int:
        """Now, as epoch nanoseconds (UTC)."""
        return self.wall0_minus_mono0 + time.monotonic_ns()

    @staticmethod
    def now() -> float:
        """Monotonic seconds (the loop's clock)."""
        return time.monotonic()


class Timer:
    """Wake coroutines at monotonic deadlines with sub-millisecond precision.

    One heap of deadlines per replay. A loop timer fires *spin* seconds before
    the earliest deadline; from then on a callback re-queues itself on every
    loop iteration (the loop keeps serving I/O in between) and resolves each
    deadline as it passes. No task is created per wait.

    Parameters
    ----------
    spin : float
        Seconds before a deadline at which the timer stops sleeping and polls.
    idle_spin : float
        The same, when the timer is about to sleep longer than 50 ms (waking
        from a long sleep can be late by a millisecond or more on a VM).
    dense : float
        When the next deadlines are closer together than this, do not poll:
        set a loop timer for the deadline itself (up to 1 ms late).
    """

    def __init__(self, spin: float = 0.001, idle_spin: float = 0.003, dense: float = 0.002) -> None:
        self.spin = spin
        self.idle_spin = idle_spin
        self.dense = dense
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._count = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._spinning = False

    async def sleep_until(self, deadline: float) -> None:
        """Return at *deadline* (``time.monotonic()`` seconds), or right away if it has passed."""
        if deadline <= time.monotonic():
            return
        loop = self._loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._heap, (deadline, next(self._count), fut))
        if self._heap[0][2] is fut and not self._spinning:
            self._arm()
        await fut

    def _lead(self, now: float) -> float:
        """How long before the earliest deadline to start polling (0: just set a loop timer)."""
        heap = self._heap
        head = heap[0][0]
        following = min((heap[i][0] for i in (1, 2) if i < len(heap)), default=math.inf)
        if following - head < self.dense:
            # deadlines close together: the loop wakes often anyway, and polling through all of them
            # would keep this process busy (and preempted) the whole time
            return 0.0
        # after a long sleep the machine may take a while to wake this process: start polling earlier
        return self.idle_spin if head - now > _LONG_SLEEP else self.spin

    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        heap = self._heap
        while heap and heap[0][2].done():
            heapq.heappop(heap)
        if not heap or self._loop is None:
            self._spinning = False
            return
        now = time.monotonic()
        wake = heap[0][0] - self._lead(now)
        if wake <= now:
            self._spinning = True
            self._loop.call_soon(self._tick)
        else:
            self._spinning = False
            self._handle = self._loop.call_at(wake, self._tick)

    def _tick(self) -> None:
        self._handle = None
        now = time.monotonic()
        heap = self._heap
        while heap and (heap[0][0] <= now or heap[0][2].done()):
            _, _, fut = heapq.heappop(heap)
            if not fut.done():
                fut.set_result(None)
        self._arm()

    async def aclose(self) -> None:
        """Stop waking anyone (pending waits are cancelled)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for _, _, fut in self._heap:
            fut.cancel()
        self._heap.clear()
        self._loop = None
