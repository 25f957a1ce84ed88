"""Interoperability: import HAR, mitmproxy and tshark files; export HAR.

Incidents are often captured by something else first (a browser's DevTools, a
mitmproxy session, a tcpdump at the TLS terminator). These importers turn
such files into wsreplay captures, and :func:`export_har` turns a capture
into a HAR that Chrome DevTools and Playwright open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ..exceptions import ConfigurationError, ImportFormatError
from ._common import PathLike, read_bytes, scrub_query
from .har import import_har
from .har_export import export_har, frames_to_har
from .mitm import import_mitm
from .tshark import import_tshark

__all__ = [
    "FORMATS",
    "import_file",
    "sniff_format",
    "import_har",
    "import_mitm",
    "import_tshark",
    "export_har",
    "frames_to_har",
    "scrub_query",
]

Format = Literal["har", "mitm", "tshark"]
#: Formats :func:`import_file` reads.
FORMATS: tuple[str, ...] = ("har", "mitm", "tshark")


def sniff_format(data: bytes, name: str = "") -> Format:
    """Tell the format of a file from its first bytes (and its name when that is not enough).

    Returns ``"har"`` (also for a ``.zip`` as Playwright writes), ``"mitm"`` or ``"tshark"``.

    Raises
    ------
    ImportFormatError
        If the content is none of them.
    """
    if data[:4] == b"PK\x03\x04":
        return "har"  # a .zip: Playwright's HAR with attached files
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1].isdigit():
        return "mitm"
    if head.startswith(b"["):
        return "tshark"
    if head.startswith(b"{"):
        compact = head.replace(b" ", b"").replace(b"\n", b"").replace(b"\r", b"").replace(b"\t", b"")
        if compact.startswith((b'{"index"', b'{"timestamp"', b'{"layers"')):
            return "tshark"
        if compact.startswith(b'{"log"') or b'"entries"' in head or name.lower().endswith(".har"):
            return "har"
        if b'"_source"' in head or b'"layers"' in head:
            return "tshark"
        return "har"
    raise ImportFormatError(
        f"{name or 'input'}: cannot tell its format: expected a HAR file, a mitmproxy flow file "
        "(mitmdump -w) or tshark -T json / -T ek output"
    )


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(4096)
    except OSError:
        return read_bytes(path)[0]  # raises the clear ImportFormatError


def import_file(
    source: PathLike | bytes,
    out: PathLike | None = None,
    *,
    format: Format | None = None,
    capture_id: str | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    **options: Any,
) -> pd.DataFrame:
    """Import a HAR, mitmproxy flow or tshark file, telling its format from its content.

    Parameters
    ----------
    source : path or bytes
        The file to import.
    out : path, optional
        Capture directory to write; without it nothing is written.
    format : {"har", "mitm", "tshark"}, optional
        Skip the sniffing.
    capture_id : str, optional
        Id of the imported capture.
    on_error : {"raise", "skip"}
        Raise on the first broken entry (default) or skip broken entries.
    **options
        Passed to the importer (``server_port=``, ``path=`` for tshark).

    Returns
    -------
    pandas.DataFrame
        The frames; ``attrs["import"]["format"]`` says which importer read them.

    Examples
    --------
    >>> frames = wsreplay.import_file("incident.har", out="capture/")
    >>> frames.attrs["import"]["format"], frames.attrs["import"]["connections"]
    ('har', 5)
    """
    if format is not None and format not in FORMATS:
        raise ImportFormatError(f"unknown import format {format!r}; use one of {', '.join(FORMATS)}")
    source_arg: PathLike | bytes
    if isinstance(source, (bytes, bytearray, memoryview)):
        source_arg = bytes(source)
        head, name = bytes(source[:4096]), "<bytes>"
    else:
        path = Path(source)
        source_arg, name, head = path, str(path), _head(path)
    fmt = format or sniff_format(head, name)
    if options and fmt != "tshark":
        raise ConfigurationError(f"{', '.join(sorted(options))} only apply to tshark imports, and {name} is {fmt}")
    if fmt == "har":
        return import_har(source_arg, out, capture_id=capture_id, on_error=on_error, **options)
    if fmt == "mitm":
        return import_mitm(source_arg, out, capture_id=capture_id, on_error=on_error, **options)
    return import_tshark(source_arg, out, capture_id=capture_id, on_error=on_error, **options)
