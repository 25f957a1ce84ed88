"""Recording: the recording proxy, the probe, and the Python API around them."""

from __future__ import annotations

from .api import Recorder, RecordingHandle, start_recording
from .prober import Probe, ProbeStats, probe, probe_async
from .stats import RecorderStats

__all__ = [
    "Recorder",
    "RecordingHandle",
    "RecorderStats",
    "start_recording",
    "Probe",
    "ProbeStats",
    "probe",
    "probe_async",
]
