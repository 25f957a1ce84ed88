"""Process-wide settings for a process that only records (``wsreplay record``).

:class:`~wsreplay.record.api.Recorder` itself does not apply them: a library
must not change the Arrow settings or the interpreter's thread switching of a
notebook or a test run it is used in. The command line does, before it starts.
"""

from __future__ import annotations

import sys

__all__ = ["tune_recorder_process"]


def tune_recorder_process() -> None:
    """Settings that make a recording process lighter and its relay steadier.

    * The capture is encoded on a background thread; the interpreter switches
      threads every 0.5 ms instead of 5 ms, so the relay's event loop never
      waits long for the GIL.
    * Arrow's system allocator instead of its default (mimalloc or jemalloc):
      buffers are allocated and freed on the flush thread a batch at a time,
      and the default kept about 5 MB more per second of traffic in this pattern.
    * Arrow's CPU thread pool is one thread: a flush is a few thousand rows, the
      flush thread does the work, and each pool thread costs a stack and a
      malloc arena of its own.
    """
    sys.setswitchinterval(0.0005)
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
    pa.set_cpu_count(1)
