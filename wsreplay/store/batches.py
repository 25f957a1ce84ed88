"""Capture rows to Arrow IPC record batch messages, the stream segment's unit (no pyarrow needed).

A segment being written is the capture schema's message
(:data:`SCHEMA_MESSAGE`) followed by record batch messages, appended and
fsync'ed a flush at a time. The recorder's rows are encoded here by hand
(:mod:`wsreplay.store.ipc`), so its process never loads pyarrow; a value the
hand encoder does not take as it is (a ``str`` that is not UTF-8, a
``datetime`` for a time) sends its column to pyarrow, which builds it as
:func:`wsreplay.schema.column_array` always did (and raises what it raises).
Tables from callers that have pyarrow anyway (the simulator, ``save``) are
serialised by pyarrow itself, compressed.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Sequence
from itertools import accumulate
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final

from ..columns import BINARY, COLUMN_TYPES, FORMAT_VERSION, STRING, VERSION_KEY
from .ipc import (
    EOS,
    INT_CODES,
    Column,
    bytes_column,
    int_column,
    record_batch_message,
    schema_message,
    validity_bitmap,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "SCHEMA_MESSAGE",
    "BAD",
    "encode_value",
    "encode_column",
    "gather_column",
    "gatherer",
    "rows_to_batch",
    "batch_to_table",
    "table_to_batches",
]

#: The first message of every segment stream: the capture schema and its format version.
SCHEMA_MESSAGE: Final = schema_message(COLUMN_TYPES, {VERSION_KEY: str(FORMAT_VERSION).encode()})


class _Unencodable:
    """A value the hand encoder does not take as it is: its column goes to pyarrow."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "BAD"


#: What :func:`encode_value` gives for such a value.
BAD: Final = _Unencodable()
_INT_RANGE: Final = range(-(1 << 63), 1 << 63)


def encode_value(value: Any, typ: str) -> Any:
    """*value* as a column of type *typ* holds it: UTF-8 bytes, bytes, an int, ``None``, or :data:`BAD`."""
    if value is None:
        return None
    cls = type(value)
    if typ == STRING:
        if cls is str:
            try:
                return value.encode()
            except UnicodeEncodeError:
                return BAD
        return BAD
    if typ == BINARY:
        if cls is bytes:
            return value
        return bytes(value) if cls in (bytearray, memoryview) else BAD
    return value if cls is int and value in _INT_RANGE else BAD


def encode_column(name: str, values: Sequence[Any], raw: Callable[[], list[Any]]) -> Column:
    """Column *name* of encoded *values*; ``raw()`` gives the Python values when one is :data:`BAD`."""
    if BAD in values:
        from ..schema import COLUMNS, column_array

        arr = column_array(raw(), COLUMNS[name])  # not all null: one value is BAD
        return arr.null_count, [b"" if b is None else b.to_pybytes() for b in arr.buffers()]
    if COLUMN_TYPES[name] in INT_CODES:
        return int_column(values, COLUMN_TYPES[name])
    return bytes_column(values)


def gatherer(idx: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """``f(seq) == tuple(seq[i] for i in idx)``, in C (``operator.itemgetter``) for any length of *idx*."""
    if len(idx) > 1:
        return itemgetter(*idx)
    return lambda seq: tuple(seq[i] for i in idx)


def gather_column(
    name: str,
    per: list[Any],
    idx: array,
    raw: Callable[[], list[Any]],
    used: set[int] | None = None,
    gather: Callable[[Sequence[Any]], tuple[Any, ...]] | None = None,
) -> Column:
    """Column *name* whose row *i* is ``per[idx[i]]``: encoded values of a few keys, gathered in C.

    The recorder's columns mostly depend on a message kind or a connection, of
    which a batch holds few: each is encoded once, and its validity, lengths
    and bytes are gathered with *gather* (:func:`gatherer` of *idx*, made once
    for all the columns of a batch: no Python code per row); a column with one
    value in the whole batch (*used*: the keys *idx* holds, when the caller has
    them) is a repetition of it. ``raw()`` gives the Python values row by row
    when a value is :data:`BAD`.
    """
    typ = COLUMN_TYPES[name]
    n = len(idx)
    code = INT_CODES.get(typ)
    values = {per[k] for k in used} if used is not None and len(used) < n else None
    if values is not None and len(values) == 1:  # one value in the whole batch
        (v,) = values
        if v is BAD:
            return encode_column(name, [v] * n, raw)
        if v is None:
            return _nulls(n, code)
        if code:
            return 0, [b"", (array(code, [v]) * n).tobytes()]
        return 0, [b"", array("i", range(0, len(v) * (n + 1), len(v)) if v else bytes(4 * (n + 1))).tobytes(), v * n]
    if BAD in per:
        return encode_column(name, [per[i] for i in idx], raw)
    valid_of = [v is not None for v in per]
    if not any(valid_of):  # all null (most columns of a message row)
        return _nulls(n, code)
    gather = gather or gatherer(idx)
    if all(valid_of):
        nulls, valid = 0, b""
    else:
        flags = bytes(gather(valid_of))
        nulls = flags.count(0)
        valid = validity_bitmap(flags) if nulls else b""
    if code:
        filled = [0 if v is None else v for v in per]
        return nulls, [valid, array(code, gather(filled)).tobytes()]
    data = [b"" if v is None else v for v in per]
    offsets = struct.pack(f"<{n + 1}i", *accumulate(gather(list(map(len, data))), initial=0))
    return nulls, [valid, offsets, b"".join(gather(data))]


def _nulls(n: int, code: str | None) -> Column:
    """A column of *n* nulls (integers if *code*, else strings or bytes)."""
    if code:
        return n, [bytes((n + 7) // 8), bytes(array(code).itemsize * n)]
    return n, [bytes((n + 7) // 8), bytes(4 * (n + 1)), b""]


def rows_to_batch(rows: list[dict[str, Any]]) -> bytes:
    """One record batch message of event dicts (missing keys are null), like :func:`~wsreplay.schema.rows_to_table`."""
    columns = []
    for name, typ in COLUMN_TYPES.items():
        raw = [row.get(name) for row in rows]
        columns.append(encode_column(name, [encode_value(v, typ) for v in raw], raw.copy))
    return record_batch_message(len(rows), columns)


def batch_to_table(message: bytes) -> pa.Table:
    """The capture table of one record batch message (imports pyarrow: for observers and tests)."""
    import pyarrow as pa

    return pa.ipc.open_stream(SCHEMA_MESSAGE + message + EOS).read_all()


def table_to_batches(table: pa.Table) -> bytes:
    """The record batch messages of a capture table (exactly the schema), serialised by pyarrow, zstd."""
    import pyarrow as pa

    from ..schema import SCHEMA
    from .segments import STREAM_OPTIONS

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, SCHEMA, options=STREAM_OPTIONS) as stream:
        stream.write_table(table)
    data = sink.getvalue().to_pybytes()
    schema_end = 8 + int.from_bytes(data[4:8], "little", signed=True)  # the schema message has no body
    assert data.endswith(EOS)
    return data[schema_end : -len(EOS)]
