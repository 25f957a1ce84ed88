"""Running a coroutine to completion from blocking code, also inside Jupyter.

A notebook cell already runs inside an event loop, where ``asyncio.run``
refuses to start. The blocking twins of wsreplay then run the coroutine on a
fresh loop in a worker thread and wait for it; elsewhere they use
``asyncio.run`` directly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_blocking"]

T = TypeVar("T")


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run *coro* to completion and return its result (or raise its exception)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="wsreplay-blocking", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
