"""The one exceptions module of wsreplay.

Every error wsreplay raises on purpose derives from :class:`WSReplayError`, and
subclasses the builtin exception callers would expect (``ValueError`` for bad
input, ``FileNotFoundError`` for a missing capture, ...). No other module
defines exception classes.
"""

from __future__ import annotations

__all__ = [
    "WSReplayError",
    "CaptureError",
    "CaptureFormatError",
    "CaptureNotFoundError",
    "CaptureVersionError",
    "CaptureDamageWarning",
    "UndecodedFramesError",
    "ConfigurationError",
    "ReplayError",
    "ReplayMismatchError",
    "UpstreamError",
    "ImportFormatError",
    "RelayHTTPError",
]


class WSReplayError(Exception):
    """Base class of every error wsreplay raises on purpose."""


class CaptureError(WSReplayError):
    """Something is wrong with a capture (file or directory)."""


class CaptureFormatError(CaptureError, ValueError):
    """A file is not a wsreplay capture, or its content does not fit the schema."""


class CaptureVersionError(CaptureFormatError):
    """A capture was written with a format version this wsreplay does not know."""


class UndecodedFramesError(CaptureFormatError):
    """Frames carry payloads but not the parsed columns the analysis reads (built by hand or converted).

    ``wsreplay.save`` decodes them; then ``wsreplay.load`` gives frames that analyse like a recording.
    """


class CaptureNotFoundError(CaptureError, FileNotFoundError):
    """A capture path does not exist or holds no segment."""


class CaptureDamageWarning(UserWarning):
    """Part of a capture segment could not be read; the message says how much, and what was kept.

    A warning, not an error: the rows before and after the damage are still returned.
    """


class ConfigurationError(WSReplayError, ValueError):
    """An option or argument has a value that cannot work (bad URL, bad range, ...)."""


class UpstreamError(WSReplayError, ConnectionError):
    """The upstream authentik (or replay target) refused or could not be reached."""


class ReplayError(WSReplayError):
    """A replay could not be carried out."""


class ReplayMismatchError(ReplayError, AssertionError):
    """A replay's answers differ from the recorded ones (raised by assertion helpers)."""


class ImportFormatError(WSReplayError, ValueError):
    """A HAR, mitmproxy or tshark file could not be imported; the message names the entry."""


class RelayHTTPError(WSReplayError, ValueError):
    """An HTTP head or body the recorder relays cannot be parsed (answered with 400 or 502)."""
