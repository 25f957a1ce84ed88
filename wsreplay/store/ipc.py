"""The Arrow IPC stream format, written by hand (sans I/O, no pyarrow).

The recorder appends its rows to the segment being written as Arrow IPC
stream messages. Encoding them needs only flat buffers of values, offsets and
validity bits, and a few flatbuffer tables of metadata; this module writes
those, so a process that only relays and records never loads pyarrow and
numpy (about 70 MB of shared libraries). pyarrow reads the result like any
stream it wrote itself (the tests read every column back with it).

Only what the capture schema uses is here: nullable ``int16``/``int32``/
``int64``, ``timestamp[ns, tz=UTC]``, ``string`` and ``binary`` columns,
uncompressed bodies, little-endian, metadata version V5. References: the
Arrow columnar format (``format/Message.fbs``, ``format/Schema.fbs``) and the
flatbuffers binary format.

Examples
--------
>>> head = schema_message({"n": "int64"})
>>> body = record_batch_message(2, [int_column([1, None], "int64")])
>>> import pyarrow as pa
>>> pa.ipc.open_stream(head + body + EOS).read_all().column("n").to_pylist()
[1, None]
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence
from itertools import accumulate
from typing import Final, cast

from ..columns import BINARY, INT_WIDTHS, STRING, TIMESTAMP

__all__ = [
    "EOS",
    "Column",
    "schema_message",
    "record_batch_message",
    "validity_bitmap",
    "int_column",
    "bytes_column",
    "INT_CODES",
]

#: End of a stream: the continuation marker and a zero length.
EOS: Final = b"\xff\xff\xff\xff\x00\x00\x00\x00"
_CONTINUATION: Final = b"\xff\xff\xff\xff"
_V5: Final = 4  # MetadataVersion.V5
# MessageHeader union
_SCHEMA, _RECORD_BATCH = 1, 3
# Type union
_INT, _BINARY, _UTF8, _TIMESTAMP = 2, 4, 5, 10
_NANOSECOND = 3

#: Integer type name -> ``array`` typecode of its values (the timestamp is an int64 too).
INT_CODES: Final = {"int16": "h", "int32": "i", "int64": "q", TIMESTAMP: "q"}

#: One column of a record batch: ``(null_count, buffers)``, buffers in Arrow's order
#: (validity, values) or (validity, offsets, data); an empty validity buffer means no nulls.
Column = tuple[int, list[bytes]]


# ---------------------------------------------------------------- flatbuffers

# A table is a list of fields by id: None (absent) or (format, value), format a struct code for a
# scalar, or "o" for an offset to a child: ("s", bytes) a string, ("t", fields) a table,
# ("vt", [fields, ...]) a vector of tables, ("vs", raw, count) a vector of 16-byte structs.
_Node = tuple[str, object]
_Field = tuple[str, object] | None


class _Builder:
    """A flatbuffer written front to back: every child after what points to it (uoffsets point forward)."""

    def __init__(self) -> None:
        self.buf = bytearray(4)  # the root offset, patched in finish()

    def _pad(self, align: int, ahead: int = 0) -> None:
        self.buf.extend(bytes(-(len(self.buf) + ahead) % align))

    def finish(self, root: list[_Field]) -> bytes:
        pos = self._table(root)
        struct.pack_into("<I", self.buf, 0, pos)
        self._pad(8)
        return bytes(self.buf)

    def _node(self, node: _Node) -> int:
        kind, value = node
        if kind == "s":
            data = value if isinstance(value, bytes) else str(value).encode()
            self._pad(4)
            pos = len(self.buf)
            self.buf += struct.pack("<I", len(data)) + data + b"\0"
            return pos
        if kind == "t":
            return self._table(value)  # type: ignore[arg-type]
        if kind == "vt":
            tables: list[list[_Field]] = value  # type: ignore[assignment]
            self._pad(4)
            pos = len(self.buf)
            self.buf += struct.pack("<I", len(tables)) + bytes(4 * len(tables))
            for i, table in enumerate(tables):
                at = pos + 4 + 4 * i
                struct.pack_into("<I", self.buf, at, self._table(table) - at)
            return pos
        if kind == "vs":
            raw, count = cast(tuple[bytes, int], value)
            self._pad(8, ahead=4)  # the structs hold int64s: 8-aligned after the 4-byte length
            pos = len(self.buf)
            self.buf += struct.pack("<I", count) + raw
            return pos
        raise ValueError(kind)

    def _table(self, fields: list[_Field]) -> int:
        # Inline layout relative to the table's start, which is placed at 4 mod 8: the soffset to the
        # vtable first, then scalars from the widest down, so each lands on its natural alignment.
        present = [(i, f) for i, f in enumerate(fields) if f is not None]
        size = {"o": 4}
        slots = sorted(present, key=lambda f: -(size.get(f[1][0]) or struct.calcsize("<" + f[1][0])))
        where: dict[int, int] = {}
        end = 4
        for i, (fmt, _) in slots:
            width = size.get(fmt) or struct.calcsize("<" + fmt)
            end += -(end + 4) % width  # (start + end) % width == 0 with start = 4 mod 8
            where[i] = end
            end += width
        vtable = struct.pack(
            f"<HH{len(fields)}H", 4 + 2 * len(fields), end, *(where.get(i, 0) for i in range(len(fields)))
        )
        self._pad(2)
        vt_pos = len(self.buf)
        self.buf += vtable
        self._pad(8, ahead=4)
        start = len(self.buf)
        inline = bytearray(end)
        struct.pack_into("<i", inline, 0, start - vt_pos)
        for i, (fmt, value) in present:
            if fmt != "o":
                struct.pack_into("<" + fmt, inline, where[i], value)
        self.buf += inline
        for i, (fmt, value) in present:
            if fmt == "o":
                at = start + where[i]
                struct.pack_into("<I", self.buf, at, self._node(value) - at)  # type: ignore[arg-type]
        return start


def _message(header_type: int, header: list[_Field], body_length: int) -> bytes:
    meta = _Builder().finish([("h", _V5), ("B", header_type), ("o", ("t", header)), ("q", body_length)])
    return _CONTINUATION + struct.pack("<i", len(meta)) + meta


def _type(name: str) -> tuple[int, list[_Field]]:
    if name in INT_WIDTHS:
        return _INT, [("i", INT_WIDTHS[name]), ("B", 1)]
    if name == TIMESTAMP:
        return _TIMESTAMP, [("h", _NANOSECOND), ("o", ("s", b"UTC"))]
    if name == STRING:
        return _UTF8, []
    if name == BINARY:
        return _BINARY, []
    raise ValueError(f"no Arrow IPC encoding here for type {name!r}")


def schema_message(columns: dict[str, str], metadata: dict[bytes, bytes] | None = None) -> bytes:
    """The stream's first message: the schema of *columns* (name -> type name, all nullable).

    Parameters
    ----------
    columns : dict
        Column name -> a type name of :mod:`wsreplay.columns` (``"int64"``, ``"string"``...).
    metadata : dict, optional
        The schema's key-value metadata (the capture format version).
    """
    fields = []
    for name, typ in columns.items():
        type_type, type_table = _type(typ)
        fields.append(
            [("o", ("s", name)), ("B", 1), ("B", type_type), ("o", ("t", type_table)), None, ("o", ("vt", []))]
        )
    kv = [[("o", ("s", k)), ("o", ("s", v))] for k, v in (metadata or {}).items()]
    schema: list[_Field] = [None, ("o", ("vt", fields))]
    if kv:
        schema.append(("o", ("vt", kv)))
    return _message(_SCHEMA, schema, 0)


def record_batch_message(length: int, columns: Sequence[Column]) -> bytes:
    """One record batch of *length* rows: its metadata and its body, ready to append to a stream."""
    nodes = bytearray()
    buffers = bytearray()
    body: list[bytes] = []
    offset = 0
    for null_count, bufs in columns:
        nodes += struct.pack("<qq", length, null_count)
        for buf in bufs:
            size = len(buf)
            buffers += struct.pack("<qq", offset, size)
            body.append(buf)
            pad = -size % 8
            if pad:
                body.append(bytes(pad))
            offset += size + pad
    header: list[_Field] = [
        ("q", length),
        ("o", ("vs", (bytes(nodes), len(columns)))),
        ("o", ("vs", (bytes(buffers), len(buffers) // 16))),
    ]
    return _message(_RECORD_BATCH, header, offset) + b"".join(body)


# ------------------------------------------------------------------- columns

_BITS: Final = bytes.maketrans(b"\x00\x01", b"01")


def validity_bitmap(valid: bytes) -> bytes:
    """Arrow's validity bits (least significant bit first) of one byte per row, 1 valid, 0 null."""
    if not valid:
        return b""
    bits = int(valid[::-1].translate(_BITS), 2)
    return bits.to_bytes((len(valid) + 7) // 8, "little")


def int_column(values: Sequence[int | None], typ: str) -> Column:
    """An integer or timestamp column from Python ints (``None`` is null)."""
    code = INT_CODES[typ]
    nulls = values.count(None) if isinstance(values, list) else sum(v is None for v in values)
    if not nulls:
        data = values if isinstance(values, array) and values.typecode == code else array(code, values)  # type: ignore[arg-type,type-var]
        return 0, [b"", data.tobytes()]
    data = array(code, [0 if v is None else v for v in values])
    return nulls, [validity_bitmap(bytes(v is not None for v in values)), data.tobytes()]


def bytes_column(values: Sequence[bytes | None]) -> Column:
    """A ``string`` (values UTF-8 encoded already) or ``binary`` column (``None`` is null)."""
    nulls = values.count(None) if isinstance(values, list) else sum(v is None for v in values)
    if nulls:
        valid = validity_bitmap(bytes(v is not None for v in values))
        values = [b"" if v is None else v for v in values]
    else:
        valid = b""
    offsets = array("i", accumulate(map(len, values), initial=0))  # type: ignore[arg-type]
    return nulls, [valid, offsets.tobytes(), b"".join(values)]  # type: ignore[arg-type]
