"""Counters of a running recorder (read by the status line and the summary)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["RecorderStats"]


@dataclass
class RecorderStats:
    """What the recorder has relayed so far.

    Attributes
    ----------
    connections_open, connections_total : int
        WebSocket connections relayed now / since start.
    refused : int
        Handshakes the upstream refused or could not take (502).
    frames, bytes : int
        Data messages relayed and recorded, and their payload bytes.
    errors : int
        ``error`` rows written (refusals, abrupt ends, malformed or over-size frames).
    http_requests : int
        Plain HTTP requests passed through.
    """

    connections_open: int = 0
    connections_total: int = 0
    refused: int = 0
    frames: int = 0
    bytes: int = 0
    errors: int = 0
    http_requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The counters as a plain dict."""
        return asdict(self)
