"""Running an async service on its own event loop in a background thread.

The blocking twins of the package (the recorder's :func:`~wsreplay.start_recording`,
the mock authentik's ``start_in_thread``, the replay server's ``serve``) all
need the same thing: start a service with ``async start()`` / ``async stop()``
on a private loop, wait until it listens (or raise why it could not), call
coroutines on it from the caller's thread, and stop it cleanly. The twins that
run one coroutine to its end (:func:`~wsreplay.replay`, :func:`~wsreplay.probe`)
use :func:`run_in_thread`, the same thread with nothing to start. Working on a
loop of its own, it behaves the same in a script and inside a running Jupyter
kernel, whose loop is never touched (which is why wsreplay does not need
``nest-asyncio``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from .exceptions import ConfigurationError

__all__ = ["ServiceThread", "run_in_thread"]

T = TypeVar("T")


class ServiceThread:
    """Run ``start()`` ... ``stop()`` of an async service on a loop in a daemon thread.

    Parameters
    ----------
    start, stop : callables returning awaitables
        Called on the thread's loop; *stop* runs when :meth:`stop` is called.
    name : str
        Thread name (what the service is, for debuggers and error messages).
    timeout : float
        Seconds to wait for *start* before giving up.

    Raises
    ------
    BaseException
        Whatever *start* raised, re-raised in the calling thread.
    ConfigurationError
        If *start* did not finish within *timeout*.
    """

    def __init__(
        self,
        start: Callable[[], Awaitable[Any]],
        stop: Callable[[], Awaitable[Any]],
        *,
        name: str,
        timeout: float = 30.0,
    ) -> None:
        self.name = name
        self._start, self._stop_service = start, stop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise ConfigurationError(f"{name} did not start within {timeout:g} s")
        if self._error is not None:
            self._thread.join()
            raise self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the starting thread
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        await self._start()
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await self._stop_service()

    @property
    def running(self) -> bool:
        """Whether the service's thread is alive."""
        return self._thread.is_alive()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run *coro* on the service's loop and return its result (blocking)."""
        loop = self._loop
        if loop is None or not self._thread.is_alive():
            coro.close()
            raise ConfigurationError(f"{self.name} is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule a plain function on the service's loop."""
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(fn, *args)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the service and join its thread (idempotent)."""
        if self._loop is not None and self._stop_event is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop_event.set)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)


async def _nothing() -> None:
    return None


def run_in_thread(coro: Coroutine[Any, Any, T], *, name: str) -> T:
    """Run *coro* to its end on a :class:`ServiceThread`'s loop and return its result (blocking).

    What the blocking twins of coroutines call: the same in a script and in a
    Jupyter cell (whose running loop is left alone). Whatever *coro* raises is
    raised here.

    Examples
    --------
    >>> async def answer() -> int:
    ...     return 42
    >>> run_in_thread(answer(), name="an example")
    42
    """
    service = ServiceThread(_nothing, _nothing, name=name)
    try:
        return service.call(coro)
    finally:
        service.stop(timeout=None)
