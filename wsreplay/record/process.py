"""Process-wide settings for a process that only records (``wsreplay record``).

:class:`~wsreplay.record.api.Recorder` itself does not apply them: a library
must not change the interpreter's thread switching of a
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

    pyarrow is not loaded here at all: the capture is encoded by hand and
    sealed into Parquet by a short-lived child process (see
    :class:`~wsreplay.store.CaptureWriter`'s ``seal``).
    """
    sys.setswitchinterval(0.0005)
