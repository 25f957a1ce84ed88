"""Import the WebSocket connections of a HAR file into a capture.

Reads what Chrome/Edge DevTools ("Save all as HAR"), Playwright and
mitmproxy's HAR export write: an entry per WebSocket handshake, recognised by
``_resourceType: "websocket"`` (or a ``ws://``/``wss://`` URL, a ``101``
status, an ``Upgrade: websocket`` request header, or ``_webSocketMessages``),
whose ``_webSocketMessages`` list holds the frames::

    {"type": "send" | "receive", "time": <epoch seconds>, "opcode": 1 | 2, "data": "..."}

``time`` is epoch seconds in DevTools' and mitmproxy's HARs and epoch
milliseconds in Playwright's (told apart by magnitude); Playwright's
``content: "attach"`` mode keeps the messages in a ``.jsonl`` file named by
``response.content._file``, read from beside the ``.har`` or from the ``.zip``
Playwright wrote. ``send`` is a frame the peer (browser, outpost) sent to the server
(``to_server``), ``receive`` one it got (``to_peer``). Opcode 1 is text, 2 is
binary with base64 ``data``. From the handshake only the path, the query
string (without credential-like parameters), the status and the User-Agent
are kept; ``Authorization``, cookies and tokens are never read.

HAR files written by :func:`wsreplay.export_har` carry a ``_wsreplay`` object
per entry (connection id, open/close/error events); importing them gives back
the capture's frames.

Reading the file (plain, or the ``.zip`` Playwright writes, with the files
it attached) is done here; :mod:`~wsreplay.interop.har_entries` turns the
entries into rows.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..exceptions import ImportFormatError
from ._common import (
    OnError,
    PathLike,
    describe,
    finish,
    iter_json_array,
    json_error,
    new_capture_id,
    read_bytes,
    refuse_deep_nesting,
)
from .har_entries import Resources, har_rows, url_path

__all__ = ["import_har"]

_ENTRIES_RE = re.compile(r'"entries"\s*:\s*\[')
_URL_RE = re.compile(r'"url"\s*:\s*"([^"]*)"')


def import_har(
    source: PathLike | bytes,
    out: PathLike | None = None,
    *,
    capture_id: str | None = None,
    on_error: OnError = "raise",
) -> pd.DataFrame:
    """Import the WebSocket connections of a HAR file.

    Parameters
    ----------
    source : path or bytes
        A ``.har`` file (or its content).
    out : path, optional
        Capture directory to write (created if missing). Without it, nothing
        is written and the frames are only returned.
    capture_id : str, optional
        Id of the imported capture; a new one by default (a HAR exported by
        wsreplay keeps its own ids unless this is given).
    on_error : {"raise", "skip"}
        What to do with an entry that cannot be read: raise
        :class:`~wsreplay.exceptions.ImportFormatError` (default), or skip it
        and list it in ``frames.attrs["import"]["errors"]``.

    Returns
    -------
    pandas.DataFrame
        The frames, as :func:`wsreplay.load` returns them; ``attrs["import"]``
        holds the counts (``connections``, ``messages``, ``skipped_entries``
        that are not WebSocket handshakes, ...).

    Raises
    ------
    ImportFormatError
        If the file is not a HAR, or an entry is broken; the message names
        the entry (its index in ``log.entries``, from 0) and its path, e.g.
        ``entry 12 (/ws/outpost/<pk>/): message 3 has no 'time'``.

    Examples
    --------
    >>> frames = wsreplay.import_har("devtools.har", out="capture/")
    >>> frames.groupby(["endpoint", "direction"], observed=True).size()
    endpoint  direction
    client    to_peer      5
    dtype: int64
    """
    data, name = read_bytes(source)
    resources: Resources | None
    if data[:4] == b"PK\x03\x04":
        data, resources = _from_zip(data, name)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        resources = None
    else:
        resources = _beside(Path(source).parent)
    stats: dict[str, Any] = {}
    with refuse_deep_nesting(name):
        har = _parse(data, name)
        rows = har_rows(har, capture_id=capture_id, on_error=on_error, stats=stats, name=name, resources=resources)
    cid = new_capture_id(capture_id or stats.pop("capture_id", None))
    return finish(rows, out=out, capture_id=cid, source=name, fmt="har", stats=stats)


def _beside(folder: Path) -> Resources:
    def read(file: str) -> bytes | None:
        path = folder / file
        if Path(file).name != file or not path.is_file():  # only plain names next to the HAR
            return None
        return path.read_bytes()

    return read


def _from_zip(data: bytes, name: str) -> tuple[bytes, Resources]:
    """The HAR inside a ``.zip`` (Playwright's ``recordHar`` to a .zip path) and its attached files."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise ImportFormatError(f"{name}: a broken .zip: {exc}") from None
    hars = [m for m in members if m.lower().endswith(".har")]
    if not hars:
        raise ImportFormatError(f"{name}: the .zip holds no .har file")

    def read(file: str) -> bytes | None:
        return archive.read(file) if file in members else None

    return archive.read(hars[0]), read


def _parse(data: bytes, name: str) -> Mapping[str, Any]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{name}: not a HAR file: not UTF-8 text (byte {exc.start})") from None
    try:
        har = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _locate(text, exc, name) from None
    if not isinstance(har, Mapping) or not isinstance(har.get("log"), Mapping):
        raise ImportFormatError(f"{name}: not a HAR file: no 'log' object at the top")
    if not isinstance(har["log"].get("entries"), list):
        raise ImportFormatError(f"{name}: not a HAR file: 'log.entries' is missing or not a list")
    return har


def _locate(text: str, exc: json.JSONDecodeError, name: str) -> ImportFormatError:
    """Name the entry in which the JSON of a HAR breaks (a cut-off download, an edit gone wrong)."""
    m = _ENTRIES_RE.search(text)
    if m is not None and exc.pos > m.end():
        try:
            for _ in iter_json_array(text, m.end() - 1):
                pass
        except json.JSONDecodeError as inner:
            index = getattr(inner, "index", None)
            if index is not None:
                url = _URL_RE.search(text, inner.pos if inner.pos < len(text) else 0)
                where = url_path(url.group(1)) if url and index is not None else None
                what = (
                    "the file ends inside this entry (cut off?)"
                    if inner.pos >= len(text.rstrip())
                    else f"invalid JSON: {inner.msg} at line {inner.lineno} column {inner.colno}"
                )
                return ImportFormatError(f"{name}: entry {index}{describe(where)}: {what}")
    return json_error(exc, name, "HAR JSON")
