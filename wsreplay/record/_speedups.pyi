# The recorder's per-message fast path in C (_speedups.c); see frames.py and relay.py for the Python equivalents.
from collections.abc import Callable
from typing import Any

__all__ = ["Tap", "whole_frame"]

def whole_frame(data: bytes, max_size: int, /) -> tuple[str, bytes, bool] | None: ...

class Tap:
    def __init__(
        self,
        relay: Any,
        parser: Any,
        log: Any,
        put: Callable[[Any], None],
        direction: str,
        stats: Any,
        dst: Any,
        now_ns: Callable[[], int] | None,
        anchors: tuple[int, int],
    ) -> None: ...
    def __call__(self, data: bytes, /) -> None: ...
