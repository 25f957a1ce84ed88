"""A reader for tnetstrings, the serialisation of mitmproxy's flow files.

A tnetstring is ``<length>:<payload><tag>``: the decimal byte length of the
payload, a colon, the payload, and one tag byte giving its type::

    ,  bytes        ;  text (UTF-8)   #  integer    ^  float
    !  true/false   ~  null (empty)   ]  list of tnetstrings
    }  dict: alternating key and value tnetstrings

``mitmdump -w`` writes one tnetstring dict per flow, back to back. Only
reading is needed here, so mitmproxy itself is not a dependency.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..exceptions import ImportFormatError

__all__ = ["loads", "iter_values"]

_MAX_PREFIX = 12  # digits; mitmproxy refuses longer length prefixes too


def _error(message: str, pos: int) -> ImportFormatError:
    return ImportFormatError(f"{message} (byte {pos})")


def _cut(length: int, pos: int, size: int) -> ImportFormatError:
    return ImportFormatError(
        f"the data ends at byte {size}, inside a value of {length} bytes that starts at byte {pos}"
    )


def _key(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def _parse(data: bytes, pos: int, limit: int) -> tuple[Any, int]:
    """Parse one value starting at *pos* that must end by *limit*; return it and the next position."""
    colon = data.find(b":", pos, min(pos + _MAX_PREFIX + 1, limit))
    if colon < 0:
        if limit >= len(data) and len(data) - pos <= _MAX_PREFIX and data[pos:].isdigit():
            raise ImportFormatError(f"the data ends at byte {len(data)}, inside a length prefix")
        raise _error("missing or invalid length prefix", pos)
    prefix = data[pos:colon]
    if not prefix.isdigit():
        raise _error(f"invalid length prefix {prefix[:20]!r}", pos)
    length = int(prefix)
    start = colon + 1
    end = start + length
    if end >= limit:
        if limit >= len(data):
            raise _cut(length, pos, len(data))
        raise _error(f"a value of {length} bytes runs past the end of its container", pos)
    tag = data[end]
    body = data[start:end]
    if tag == 0x2C:  # ,
        return body, end + 1
    if tag == 0x3B:  # ;
        try:
            return body.decode("utf-8"), end + 1
        except UnicodeDecodeError:
            raise _error("text value is not UTF-8", pos) from None
    if tag == 0x23:  # #
        try:
            return int(body), end + 1
        except ValueError:
            raise _error(f"invalid integer {body[:20]!r}", pos) from None
    if tag == 0x5E:  # ^
        try:
            return float(body), end + 1
        except ValueError:
            raise _error(f"invalid float {body[:20]!r}", pos) from None
    if tag == 0x21:  # !
        if body == b"true":
            return True, end + 1
        if body == b"false":
            return False, end + 1
        raise _error(f"invalid boolean {body[:20]!r}", pos)
    if tag == 0x7E:  # ~
        if length:
            raise _error("null with a payload", pos)
        return None, end + 1
    if tag == 0x5D:  # ]
        items = []
        p = start
        while p < end:
            item, p = _parse(data, p, end)
            items.append(item)
        return items, end + 1
    if tag == 0x7D:  # }
        result: dict[Any, Any] = {}
        p = start
        while p < end:
            key, p = _parse(data, p, end)
            if p >= end:
                raise _error("dict key without a value", p)
            value, p = _parse(data, p, end)
            result[_key(key)] = value
        return result, end + 1
    raise _error(f"unknown type tag {chr(tag)!r}", end)


def loads(data: bytes) -> Any:
    """Parse exactly one tnetstring.

    Examples
    --------
    >>> loads(b"19:5:12345#4:true!1:0#]")
    [12345, True, 0]
    """
    if not data:
        raise ImportFormatError("empty data")
    value, end = _parse(data, 0, len(data))
    if end != len(data):
        raise _error("trailing data after the value", end)
    return value


def iter_values(data: bytes) -> Iterator[tuple[int, Any, int]]:
    """Yield ``(start, value, end)`` for each tnetstring written back to back in *data*.

    Whitespace between values (some tools add newlines) is skipped.
    """
    pos = 0
    n = len(data)
    while True:
        while pos < n and data[pos] in b" \t\r\n":
            pos += 1
        if pos >= n:
            return
        value, nxt = _parse(data, pos, n)
        yield pos, value, nxt
        pos = nxt
