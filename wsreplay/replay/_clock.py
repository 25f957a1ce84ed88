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
import time

__all__ = ["Clock", "Timer"]


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

    Parameters
    ----------
    spin : float
        Seconds before a deadline at which the timer stops sleeping and
        starts yielding to the loop.
    """

    def __init__(self, spin: float = 0.0015) -> None:
        self.spin = spin
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._count = itertools.count()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def sleep_until(self, deadline: float) -> None:
        """Return at *deadline* (``time.monotonic()`` seconds), or right away if it has passed."""
        if deadline <= time.monotonic():
            return
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._heap, (deadline, next(self._count), fut))
        if self._heap[0][2] is fut:
            assert self._wake is not None
            self._wake.set()
        await fut

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            while self._heap and self._heap[0][2].done():
                heapq.heappop(self._heap)
            if not self._heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            deadline = self._heap[0][0]
            remaining = deadline - time.monotonic()
            if remaining > self.spin:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining - self.spin)
                except TimeoutError:
                    pass
                continue
            if remaining > 0:
                await asyncio.sleep(0)
                continue
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                _, _, fut = heapq.heappop(self._heap)
                if not fut.done():
                    fut.set_result(None)

    async def aclose(self) -> None:
        """Stop the timer task."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
