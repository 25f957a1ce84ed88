"""Recording: the recording proxy, the probe, and the Python API around them.

Names are imported when first used (see ``wsreplay/_lazy.py``): the recorder
does not load the probe (and pandas) it does not use.
"""

from __future__ import annotations

from .._lazy import attach as _attach

_NAMES: dict[str, str] = {
    "Recorder": ".api",
    "RecordingHandle": ".api",
    "start_recording": ".api",
    "Probe": ".prober",
    "ProbeStats": ".prober",
    "probe": ".prober",
    "probe_async": ".prober",
    "RecorderStats": ".stats",
}

__getattr__, __dir__ = _attach(__name__, _NAMES)

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
