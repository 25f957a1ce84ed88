"""What the importers share: time conversion, credential scrubbing, writing the result.

Every importer turns a foreign file into capture rows through
:class:`wsreplay.events.ConnectionLog`, then hands them to :func:`finish`,
which sorts them, optionally writes a capture directory, and returns the
frames DataFrame.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import pandas as pd

from ..events import new_id
from ..exceptions import ImportFormatError
from ..schema import rows_to_table, table_to_frames

__all__ = [
    "PathLike",
    "Row",
    "OnError",
    "CREDENTIAL_HEADERS",
    "is_credential_name",
    "scrub_query",
    "header_value",
    "seconds_to_ns",
    "read_bytes",
    "refuse_deep_nesting",
    "describe",
    "finish",
    "new_capture_id",
    "iter_json_array",
    "json_error",
]

PathLike = str | os.PathLike[str]
Row = dict[str, Any]
#: What an importer does with an entry it cannot read: raise, or skip it and list it in ``attrs["import"]["errors"]``.
OnError = Literal["raise", "skip"]

#: Request/response headers that carry credentials; never copied anywhere.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-authentik-token"})

_CREDENTIAL_NAME = re.compile(r"token|auth|key|pass|secret|session|jwt|sig|cookie|credential|bearer|code", re.I)
_NS_PER_S = Decimal(1_000_000_000)
_WS = re.compile(r"[ \t\r\n]*")


def is_credential_name(name: str) -> bool:
    """True if a query parameter or header *name* looks like it carries a credential."""
    return name.lower() in CREDENTIAL_HEADERS or bool(_CREDENTIAL_NAME.search(name))


def scrub_query(query: str | None) -> str:
    """A handshake query string without parameters that may carry credentials.

    ``instance_uuid`` and ``attempt`` (what outposts send) are kept; ``token``,
    ``access_token``, ``api_key``, ``session``... are dropped.

    Examples
    --------
    >>> scrub_query("instance_uuid=i1&attempt=0&token=s3cret")
    'instance_uuid=i1&attempt=0'
    """
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not is_credential_name(k)]
    if len(kept) == len(pairs):
        return query
    return urlencode(kept)


def header_value(headers: Any, name: str) -> str | None:
    """The first value of header *name* (case-insensitive) in HAR or pair-list form."""
    if not isinstance(headers, Sequence) or isinstance(headers, (str, bytes)):
        return None
    wanted = name.lower()
    for item in headers:
        if isinstance(item, Mapping):
            key, value = item.get("name"), item.get("value")
        elif isinstance(item, Sequence) and len(item) == 2:
            key, value = item
        else:
            continue
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(key, str) and key.lower() == wanted and value is not None:
            return str(value)
    return None


def seconds_to_ns(value: Any) -> int:
    """Epoch seconds (float, int or decimal string) to integer nanoseconds, exactly.

    A float is read through its shortest ``repr`` so ``1795838763.123456``
    becomes ``1795838763123456000``, not a neighbour off by a few hundred ns.

    Raises
    ------
    ValueError
        If *value* is not a finite number.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, int):
        return value * 1_000_000_000
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        dec = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not dec.is_finite():
        raise ValueError(f"{value!r} is not a finite time")
    return int((dec * _NS_PER_S).to_integral_value())


@contextlib.contextmanager
def refuse_deep_nesting(name: str) -> Iterator[None]:
    """Turn the ``RecursionError`` of parsing or walking a crafted, deeply nested file into one clear error.

    Python's JSON decoder (and any recursive walk of what it returns) gives up
    at the interpreter's recursion limit; real HAR and tshark files nest a
    few levels.
    """
    try:
        yield
    except RecursionError:
        raise ImportFormatError(f"{name}: nested too deeply to be a real export (a crafted file?)") from None


def read_bytes(source: PathLike | bytes) -> tuple[bytes, str]:
    """The content of *source* (a path, or the bytes themselves) and a name for messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    path = Path(source)
    try:
        return path.read_bytes(), str(path)
    except FileNotFoundError:
        raise ImportFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImportFormatError(f"{path} is a directory; give the file to import") from None
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read: {exc.strerror}") from None


def describe(where: str | None) -> str:
    """``" (where)"`` or nothing, for error messages naming an entry's URL or path."""
    return f" ({where})" if where else ""


def finish(
    rows: Iterable[Row],
    *,
    out: PathLike | None,
    capture_id: str,
    source: str,
    fmt: str,
    stats: Mapping[str, int],
) -> pd.DataFrame:
    """Sort imported rows by time, write them as a capture if *out* is given, return the frames.

    The returned DataFrame carries ``attrs["import"]``: the source, its format and
    counts (connections, messages, skipped entries...).
    """
    ordered = sorted(rows, key=lambda r: r["ts"])  # stable: rows of one connection keep their seq order
    table = rows_to_table(ordered)
    if out is not None:
        from ..store import CaptureWriter

        with CaptureWriter(out, capture_id=capture_id, autoflush=False) as writer:
            writer.write_table(table)
    frames = table_to_frames(table)
    frames.attrs["import"] = {"source": source, "format": fmt, "capture_id": capture_id, **stats}
    return frames


def new_capture_id(capture_id: str | None) -> str:
    """*capture_id*, or a new one."""
    return capture_id or new_id()


def json_error(exc: json.JSONDecodeError, name: str, what: str) -> ImportFormatError:
    """An :class:`ImportFormatError` for JSON that does not parse; says when the file looks cut off."""
    if exc.pos >= len(exc.doc.rstrip()):
        return ImportFormatError(f"{name}: {what} ends early (line {exc.lineno}): the file is cut off")
    return ImportFormatError(f"{name}: not valid {what}: {exc.msg} at line {exc.lineno} column {exc.colno}")


def iter_json_array(text: str, start: int, *, object_pairs_hook: Any = None) -> Iterator[tuple[int, Any]]:
    """Decode the items of the JSON array whose ``[`` is at *start*, one at a time.

    Yields ``(index, item)``. The :class:`json.JSONDecodeError` raised for the
    first item that does not decode carries that item's number as ``exc.index``,
    so callers can name the entry that failed.
    """
    decoder = json.JSONDecoder(object_pairs_hook=object_pairs_hook)
    pos = _WS.match(text, start + 1).end()  # type: ignore[union-attr]
    if text.startswith("]", pos):
        return
    index = 0
    while True:
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            exc.index = index  # type: ignore[attr-defined]
            raise
        yield index, item
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if text.startswith("]", pos):
            return
        if not text.startswith(",", pos):
            cut = pos >= len(text)
            problem = json.JSONDecodeError("array not closed" if cut else "expected ',' or ']'", text, pos)
            problem.index = index + 1 if cut else index  # type: ignore[attr-defined]
            raise problem
        pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
        index += 1
