"""wsreplay: record, analyse, plot and replay authentik's WebSocket traffic.

The public surface, importable from ``wsreplay`` directly. Each section is
owned by one module; add new public names to its section and to ``__all__``.
"""

from __future__ import annotations

__version__ = "0.1.0"

# --- capture format, protocol and storage (core + storage)
from .events import ConnectionLog
from .exceptions import (
    CaptureError,
    CaptureFormatError,
    CaptureNotFoundError,
    CaptureVersionError,
    ConfigurationError,
    ImportFormatError,
    ReplayError,
    ReplayMismatchError,
    UpstreamError,
    WSReplayError,
)
from .protocol import Instruction, decode
from .schema import FORMAT_VERSION, SCHEMA
from .store import CaptureWriter, load, recover, save
from .summary import CaptureSummary, summarize

__all__ = [
    "__version__",
    # format, protocol, storage
    "FORMAT_VERSION",
    "SCHEMA",
    "ConnectionLog",
    "CaptureWriter",
    "CaptureSummary",
    "Instruction",
    "decode",
    "load",
    "recover",
    "save",
    "summarize",
    # exceptions
    "WSReplayError",
    "CaptureError",
    "CaptureFormatError",
    "CaptureNotFoundError",
    "CaptureVersionError",
    "ConfigurationError",
    "ImportFormatError",
    "ReplayError",
    "ReplayMismatchError",
    "UpstreamError",
]
