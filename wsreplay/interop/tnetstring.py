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


#: Containers nested deeper than this are refused. mitmproxy's flows nest a handful of levels;
#: a crafted file nested a million deep must be one clear error, not a RecursionError.
MAX_DEPTH = 100

_LIST, _DICT = 0x5D, 0x7D  # ]  }
_NOTHING: Any = object()


class _Open:
    """A list or dict being read: its items so far, where it ends, and the limit of its parent."""

    __slots__ = ("end", "items", "key", "outer_limit", "tag")

    def __init__(self, tag: int, end: int, outer_limit: int) -> None:
        self.tag = tag
        self.items: list[Any] = []
        self.key: Any = _NOTHING
        self.end = end
        self.outer_limit = outer_limit

    def add(self, value: Any, pos: int) -> None:
        if self.tag == _LIST:
            self.items.append(value)
        elif self.key is _NOTHING:
            if pos >= self.end:
                raise _error("dict key without a value", pos)
            self.key = _key(value)
        else:
            self.items.append((self.key, value))
            self.key = _NOTHING

    def value(self) -> Any:
        return self.items if self.tag == _LIST else dict(self.items)


def _head(data: bytes, pos: int, limit: int) -> tuple[int, int, int]:
    """Read the length prefix at *pos*; return the payload's start, its end (the tag's position) and the tag."""
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
    return start, end, data[end]


def _scalar(data: bytes, pos: int, start: int, end: int, tag: int) -> Any:
    """The value of a non-container tnetstring whose payload is ``data[start:end]``."""
    body = data[start:end]
    if tag == 0x2C:  # ,
        return body
    if tag == 0x3B:  # ;
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise _error("text value is not UTF-8", pos) from None
    if tag == 0x23:  # #
        try:
            return int(body)
        except ValueError:
            raise _error(f"invalid integer {body[:20]!r}", pos) from None
    if tag == 0x5E:  # ^
        try:
            return float(body)
        except ValueError:
            raise _error(f"invalid float {body[:20]!r}", pos) from None
    if tag == 0x21:  # !
        if body == b"true":
            return True
        if body == b"false":
            return False
        raise _error(f"invalid boolean {body[:20]!r}", pos)
    if tag == 0x7E:  # ~
        if end > start:
            raise _error("null with a payload", pos)
        return None
    raise _error(f"unknown type tag {chr(tag)!r}", end)


def _parse(data: bytes, pos: int, limit: int) -> tuple[Any, int]:
    """Parse one value starting at *pos* that must end by *limit*; return it and the next position.

    Iterative: open lists and dicts are kept on an explicit stack (at most
    :data:`MAX_DEPTH` deep), so no input can exhaust Python's recursion limit.
    """
    stack: list[_Open] = []
    while True:
        start, end, tag = _head(data, pos, limit)
        if tag in (_LIST, _DICT):
            if len(stack) >= MAX_DEPTH:
                raise _error(f"values nested more than {MAX_DEPTH} levels deep", pos)
            stack.append(_Open(tag, end, limit))
            pos, limit = start, end
            value = _NOTHING
        else:
            value = _scalar(data, pos, start, end, tag)
            pos = end + 1
        while True:  # hand the value to its container; close the containers that are complete
            if value is not _NOTHING:
                if not stack:
                    return value, pos
                stack[-1].add(value, pos)
            top = stack[-1]
            if pos < top.end:
                break
            if top.key is not _NOTHING:
                raise _error("dict key without a value", pos)
            stack.pop()
            value, pos, limit = top.value(), top.end + 1, top.outer_limit


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
