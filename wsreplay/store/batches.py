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
from collections.abc import Callable, Iterable, Sequence
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
    "Keyed",
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


class Keyed:
    """One column's encoded values by key (a message kind, a connection), and what gathering them needs.

    Kept beside the values as keys are appended, so a batch gathers them
    without a pass over every key per column: validity flags, the values with
    nulls filled (``0`` or ``b""``), their lengths, and up to two distinct
    values (one means the column is the same for every key).
    """

    __slots__ = ("bad", "code", "distinct", "filled", "lengths", "nulls", "typ", "valid", "values")

    def __init__(self, typ: str, values: Iterable[Any] = ()) -> None:
        self.typ = typ
        self.code = INT_CODES.get(typ)
        self.values: list[Any] = []
        self.valid: list[bool] = []
        self.filled: list[Any] = []
        self.lengths: list[int] = []
        self.distinct: set[Any] = set()
        self.nulls = 0
        self.bad = 0
        for value in values:
            self.append(value)

    def append(self, value: Any) -> None:
        """One more key's encoded value (:func:`encode_value`)."""
        self.values.append(value)
        self.valid.append(value is not None)
        if value is None or value is BAD:
            self.nulls += value is None
            self.bad += value is BAD
            value = 0 if self.code else b""
        self.filled.append(value)
        if not self.code:
            self.lengths.append(len(value))
        if len(self.distinct) < 2:
            self.distinct.add(self.values[-1])

    def mark(self) -> tuple[int, frozenset[Any], int, int]:
        """A state :meth:`truncate` goes back to (keys appended for one batch only)."""
        return len(self.values), frozenset(self.distinct), self.nulls, self.bad

    def truncate(self, state: tuple[int, frozenset[Any], int, int]) -> None:
        n, distinct, self.nulls, self.bad = state
        for values in (self.values, self.valid, self.filled, self.lengths):
            del values[n:]
        self.distinct = set(distinct)


#: Offsets of a column whose every value has the same length, by length (sliced to a batch's rows).
_STEPS: dict[int, array] = {}


def _constant_offsets(length: int, n: int) -> bytes:
    if length == 0:
        return bytes(4 * (n + 1))
    steps = _STEPS.get(length)
    if steps is None or len(steps) <= n:
        if len(_STEPS) >= 64:
            _STEPS.clear()
        size = max(n + 1, min(1 << 16, (1 << 31) // length))
        steps = _STEPS[length] = array("i", range(0, length * size, length))
    return steps[: n + 1].tobytes()


def gather_column(
    name: str,
    col: Keyed,
    idx: array,
    raw: Callable[[], list[Any]],
    used: set[int] | None = None,
    gather: Callable[[Sequence[Any]], tuple[Any, ...]] | None = None,
) -> Column:
    """Column *name* whose row *i* is the value of key ``idx[i]`` in *col*, gathered in C.

    The recorder's columns mostly depend on a message kind or a connection, of
    which a batch holds few: each value is encoded once, and the rows' validity,
    lengths and bytes are gathered with *gather* (:func:`gatherer` of *idx*, made
    once for all the columns of a batch: no Python code per row); a column with
    one value for every row (the same for all keys, or for the keys in *used*
    when the caller has them and they are few) is a repetition of it. ``raw()``
    gives the Python values row by row when a value is :data:`BAD`.
    """
    n = len(idx)
    gather = gather or gatherer(idx)
    if col.bad and BAD in gather(col.values):
        return encode_column(name, list(gather(col.values)), raw)
    one = col.distinct if len(col.distinct) == 1 else None
    if one is None and used is not None and len(used) <= 64:
        values = {col.values[k] for k in used}
        one = values if len(values) == 1 else None
    if one is not None or not n:
        (v,) = one or {None}
        if v is None:
            return _nulls(n, col.code)
        if col.code:
            return 0, [b"", (array(col.code, [v]) * n).tobytes()]
        return 0, [b"", _constant_offsets(len(v), n), v * n]
    if col.nulls:
        flags = bytes(gather(col.valid))
        nulls = flags.count(0)
        valid = validity_bitmap(flags) if nulls else b""
    else:
        nulls, valid = 0, b""
    if col.code:
        return nulls, [valid, array(col.code, gather(col.filled)).tobytes()]
    offsets = struct.pack(f"<{n + 1}i", *accumulate(gather(col.lengths), initial=0))
    return nulls, [valid, offsets, b"".join(gather(col.filled))]


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
