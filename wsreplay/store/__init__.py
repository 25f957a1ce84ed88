"""Storage: the segment writer, ``load``, ``save``, crash recovery (``recover``) and ``compact``.

Names are imported when first used (see ``wsreplay/_lazy.py``): a process that
only writes captures (the recorder) does not load the reader and pandas.
"""

from __future__ import annotations

from .._lazy import attach as _attach

_NAMES: dict[str, str] = {
    "CaptureWriter": ".writer",
    "WriterStats": ".writer",
    "load": ".reader",
    "load_table": ".reader",
    "save": ".reader",
    "recover": ".recovery",
    "RecoveryReport": ".recovery",
    "segment_files": ".listing",
    "compact": ".compaction",
    "CompactReport": ".compaction",
    "bucket_files": ".layout",
}

__getattr__, __dir__ = _attach(__name__, _NAMES)

__all__ = [
    "CaptureWriter",
    "WriterStats",
    "load",
    "load_table",
    "save",
    "recover",
    "RecoveryReport",
    "segment_files",
    "compact",
    "CompactReport",
    "bucket_files",
]
