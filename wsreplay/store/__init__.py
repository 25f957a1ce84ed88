"""Storage: the segment writer, ``load``, ``save`` and crash recovery."""

from __future__ import annotations

from .reader import RecoveryReport, load, load_table, recover, save, segment_files
from .writer import CaptureWriter, WriterStats

__all__ = [
    "CaptureWriter",
    "WriterStats",
    "load",
    "load_table",
    "save",
    "recover",
    "RecoveryReport",
    "segment_files",
]
