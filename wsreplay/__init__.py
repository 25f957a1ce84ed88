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

# --- interop: import HAR / mitmproxy / tshark files, export HAR (wsreplay/interop)
# isort: split
from .interop import export_har, import_file, import_har, import_mitm, import_tshark

# --- analysis: pure pandas over the frames DataFrame (wsreplay/analysis)
# isort: split
from . import analysis
from .analysis import (
    ack_latency,
    fleet,
    hello_intervals,
    latency_percentiles,
    notice_frequency,
    outages,
    parse_errors,
    restarts,
    top_messages,
    trigger_fanout,
    upgrades,
    uptime,
)
from .exceptions import UndecodedFramesError

# --- replay: captures streamed back to a server or served as one (wsreplay/replay)
# isort: split
from .replay import (
    CheckReport,
    Matcher,
    Mismatch,
    ReplayResult,
    ReplayServer,
    ServeHandle,
    assert_replay_matches,
    replay_async,
    serve,
)
from .replay import replay as replay  # the function; the sub-package stays importable as wsreplay.replay.*

# --- recording: the recording proxy and the probe (wsreplay/record)
# isort: split
from .exceptions import RelayHTTPError
from .record import Probe, ProbeStats, Recorder, RecorderStats, RecordingHandle, probe, probe_async, start_recording

# --- presentation: plots, the HTML report, Jupyter glue (wsreplay/plot, wsreplay/report)
# isort: split
from .plot import plot_ack_latency, plot_hello_intervals, plot_notices, plot_trigger_fanout, plot_uptime
from .report import Report, report, write_report

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
    "ConfigurationError",
    "ImportFormatError",
    "ReplayError",
    "ReplayMismatchError",
    "UpstreamError",
    "UndecodedFramesError",
]
