"""Choosing the recorder's event loop: asyncio's own, or uvloop (the ``fast`` extra) when installed.

uvloop (libuv underneath) runs the same asyncio code with less CPU per socket
event, which is most of what a relay does. ``auto`` takes it when it is
installed; ``asyncio`` and ``uvloop`` force a choice (the tests run the
recorder suite under both). The ``WSREPLAY_LOOP`` environment variable gives
the default of ``wsreplay record --loop``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..exceptions import ConfigurationError

__all__ = ["LOOPS", "LOOP_ENV", "default_loop", "resolve_loop", "loop_factory", "run"]

T = TypeVar("T")

LOOPS = ("auto", "asyncio", "uvloop")
#: Environment variable naming the default loop (one of :data:`LOOPS`).
LOOP_ENV = "WSREPLAY_LOOP"


def default_loop() -> str:
    """``$WSREPLAY_LOOP``, or ``auto``."""
    return os.environ.get(LOOP_ENV) or "auto"


def resolve_loop(name: str) -> str:
    """``asyncio`` or ``uvloop``: what *name* (one of :data:`LOOPS`) means on this machine.

    Raises
    ------
    wsreplay.exceptions.ConfigurationError
        For an unknown name, or ``uvloop`` when it is not installed.

    Examples
    --------
    >>> resolve_loop("asyncio")
    'asyncio'
    """
    if name not in LOOPS:
        raise ConfigurationError(f"event loop {name!r}: choose one of {', '.join(LOOPS)}")
    installed = importlib.util.find_spec("uvloop") is not None
    if name == "auto":
        return "uvloop" if installed else "asyncio"
    if name == "uvloop" and not installed:
        raise ConfigurationError("event loop 'uvloop' is not installed: pip install 'wsreplay[fast]'")
    return name


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """A function creating a new event loop of kind *name* (see :func:`resolve_loop`)."""
    if resolve_loop(name) == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.SelectorEventLoop  # asyncio's own, whatever loop policy the process has set


def run(main: Coroutine[Any, Any, T], *, loop: str = "auto") -> T:
    """``asyncio.run(main)`` on an event loop of kind *loop*."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(main)
