"""wsreplay: record, analyse, plot and replay authentik's WebSocket traffic.

The public surface, importable from ``wsreplay`` directly. Each section is
owned by one module; add new public names to its section of ``_NAMES`` (one line:
the name and the module that defines it) and to ``__all__``. Names are imported
when first used, so ``import wsreplay`` stays cheap.
"""

from __future__ import annotations

from ._lazy import attach as _attach

__version__ = "0.1.0"

# Every public name is imported when first used (PEP 562, see ``_lazy.py``): a
# process that only records never loads pandas or matplotlib. One line per name:
# the name, then the module that defines it.
_NAMES: dict[str, str] = {
    # --- capture format, protocol and storage (core + storage)
    "ConnectionLog": ".events",
    "CaptureDamageWarning": ".exceptions",
    "CaptureError": ".exceptions",
    "CaptureFormatError": ".exceptions",
    "CaptureNotFoundError": ".exceptions",
    "CaptureVersionError": ".exceptions",
    "ConfigurationError": ".exceptions",
    "ImportFormatError": ".exceptions",
    "ReplayError": ".exceptions",
    "ReplayMismatchError": ".exceptions",
    "UndecodedFramesError": ".exceptions",
    "UpstreamError": ".exceptions",
    "WSReplayError": ".exceptions",
    "Instruction": ".protocol",
    "decode": ".protocol",
    "FORMAT_VERSION": ".schema",
    "SCHEMA": ".schema",
    "CaptureWriter": ".store",
    "compact": ".store",
    "load": ".store",
    "recover": ".store",
    "save": ".store",
    "CaptureSummary": ".summary",
    "summarize": ".summary",
    # --- interop: import HAR / mitmproxy / tshark files, export HAR (wsreplay/interop)
    "export_har": ".interop",
    "import_file": ".interop",
    "import_har": ".interop",
    "import_mitm": ".interop",
    "import_tshark": ".interop",
    # --- analysis: pure pandas over the frames DataFrame (wsreplay/analysis; the module is public too)
    "ack_latency": ".analysis",
    "fleet": ".analysis",
    "hello_intervals": ".analysis",
    "latency_percentiles": ".analysis",
    "notice_frequency": ".analysis",
    "outages": ".analysis",
    "parse_errors": ".analysis",
    "restarts": ".analysis",
    "top_messages": ".analysis",
    "trigger_fanout": ".analysis",
    "upgrades": ".analysis",
    "uptime": ".analysis",
    # --- replay: captures streamed back to a server or served as one (wsreplay/playback)
    "CheckReport": ".playback",
    "Matcher": ".playback",
    "Mismatch": ".playback",
    "ReplayResult": ".playback",
    "ReplayServer": ".playback",
    "ServeHandle": ".playback",
    "assert_replay_matches": ".playback",
    "replay_async": ".playback",
    "serve": ".playback",
    "replay": ".playback",  # the function; its package is wsreplay.playback
    # --- recording: the recording proxy and the probe (wsreplay/record)
    "RelayHTTPError": ".exceptions",
    "Probe": ".record",
    "ProbeStats": ".record",
    "Recorder": ".record",
    "RecorderStats": ".record",
    "RecordingHandle": ".record",
    "probe": ".record",
    "probe_async": ".record",
    "start_recording": ".record",
    # --- presentation: plots, the HTML report, Jupyter glue (wsreplay/plot, wsreplay/reporting)
    "plot_ack_latency": ".plot",
    "plot_hello_intervals": ".plot",
    "plot_notices": ".plot",
    "plot_trigger_fanout": ".plot",
    "plot_uptime": ".plot",
    "Report": ".reporting",
    "report": ".reporting",
    "write_report": ".reporting",
}

__getattr__, __dir__ = _attach(__name__, _NAMES, modules=["analysis"])

__all__ = [
    "__version__",
    # analysis
    "analysis",
    "hello_intervals",
    "outages",
    "uptime",
    "ack_latency",
    "latency_percentiles",
    "notice_frequency",
    "top_messages",
    "fleet",
    "restarts",
    "upgrades",
    "trigger_fanout",
    "parse_errors",
    # format, protocol, storage
    "FORMAT_VERSION",
    "SCHEMA",
    "ConnectionLog",
    "CaptureWriter",
    "CaptureSummary",
    "Instruction",
    "decode",
    "compact",
    "load",
    "recover",
    "save",
    "summarize",
    # interop
    "import_file",
    "import_har",
    "import_mitm",
    "import_tshark",
    "export_har",
    # replay
    "replay",
    "replay_async",
    "ReplayResult",
    "Matcher",
    "Mismatch",
    "CheckReport",
    "assert_replay_matches",
    "ReplayServer",
    "ServeHandle",
    "serve",
    # recording
    "Recorder",
    "RecorderStats",
    "RecordingHandle",
    "start_recording",
    "Probe",
    "ProbeStats",
    "probe",
    "probe_async",
    "RelayHTTPError",
    # presentation
    "plot_uptime",
    "plot_ack_latency",
    "plot_notices",
    "plot_hello_intervals",
    "plot_trigger_fanout",
    "Report",
    "report",
    "write_report",
    # exceptions
    "WSReplayError",
    "CaptureError",
    "CaptureFormatError",
    "CaptureNotFoundError",
    "CaptureVersionError",
    "CaptureDamageWarning",
    "ConfigurationError",
    "ImportFormatError",
    "ReplayError",
    "ReplayMismatchError",
    "UpstreamError",
    "UndecodedFramesError",
]
