"""Reading past damage in an Arrow IPC stream segment.

An Arrow IPC stream is a sequence of length-prefixed messages: a
continuation marker (``0xFFFFFFFF``), the little-endian int32 length of the
message's Flatbuffer metadata (padded to 8 bytes), the metadata, then a body
of ``bodyLength`` bytes. The schema comes first, then one message per record
batch, then an end marker (``0xFFFFFFFF 0x00000000``).

pyarrow's stream reader stops at the first message it cannot read. When that
happens, :func:`salvage` walks the messages itself: it steps over the batches
already read, skips the damaged message (by its own lengths when its metadata
is intact, else by scanning for the next continuation marker), and keeps every
later message that reads as a record batch of the segment's schema. A tail
cut off by a crash (the last message runs past the end of the file) is not
damage: a live or crashed writer leaves exactly that.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import BinaryIO

import pyarrow as pa

__all__ = ["StreamDamage", "salvage"]

_CONTINUATION = b"\xff\xff\xff\xff"
_RECORD_BATCH = 3  # MessageHeader.RecordBatch in Arrow's Message.fbs


@dataclass
class StreamDamage:
    """What could not be read in one stream segment, and what was kept around it."""

    name: str
    #: ``(start, end)`` byte ranges that could not be read.
    regions: list[tuple[int, int]] = field(default_factory=list)
    #: Record batches whose metadata was intact but whose data was not (their rows are known).
    batches_lost: int = 0
    rows_lost: int = 0
    #: Damaged ranges whose batch count is unknown (the metadata itself was damaged).
    unknown_regions: int = 0
    rows_before: int = 0
    rows_after: int = 0

    @property
    def bytes_lost(self) -> int:
        """Bytes in the damaged ranges."""
        return sum(end - start for start, end in self.regions)

    def __str__(self) -> str:
        spans = ", ".join(f"{a}-{b}" for a, b in self.regions[:5]) + (", ..." if len(self.regions) > 5 else "")
        lost = []
        if self.batches_lost:
            lost.append(f"{self.batches_lost} record batch(es) with {self.rows_lost} row(s)")
        if self.unknown_regions:
            lost.append(f"{self.unknown_regions} damaged range(s) whose row count is unknown")
        return (
            f"{self.name}: {self.bytes_lost} damaged byte(s) could not be read (bytes {spans}): "
            f"lost {' and '.join(lost) or 'no whole batch'}; kept {self.rows_before} row(s) before "
            f"and {self.rows_after} row(s) after the damage"
        )


@dataclass
class _Header:
    meta_len: int  # bytes of metadata after the 8-byte prefix
    body_len: int
    kind: int
    rows: int

    @property
    def size(self) -> int:
        return 8 + self.meta_len + self.body_len


def _table(buf: memoryview, pos: int, end: int) -> tuple[int, list[int]] | None:
    """A Flatbuffer table at *pos*: (position, field offsets), or None if it does not fit in ``[0, end)``."""
    if pos < 0 or pos + 4 > end:
        return None
    vtable = pos - struct.unpack_from("<i", buf, pos)[0]
    if vtable < 0 or vtable + 4 > end:
        return None
    vsize = struct.unpack_from("<H", buf, vtable)[0]
    if vsize < 4 or vsize % 2 or vtable + vsize > end:
        return None
    return pos, list(struct.unpack_from(f"<{(vsize - 4) // 2}H", buf, vtable + 4))


def _scalar(buf: memoryview, table: tuple[int, list[int]], index: int, fmt: str, end: int) -> int | None:
    pos, offsets = table
    if index >= len(offsets) or offsets[index] == 0:
        return 0  # absent: the default
    at = pos + offsets[index]
    if at + struct.calcsize(fmt) > end:
        return None
    value: int = struct.unpack_from(fmt, buf, at)[0]
    return value


def _header(buf: memoryview, pos: int) -> _Header | None:
    """Decode the prefix and the few metadata fields needed to step over the message at *pos*."""
    size = len(buf)
    if pos + 8 > size or buf[pos : pos + 4] != _CONTINUATION:
        return None
    meta_len = struct.unpack_from("<i", buf, pos + 4)[0]
    if meta_len <= 0 or meta_len % 8 or pos + 8 + meta_len > size:
        return None
    meta = buf[pos + 8 : pos + 8 + meta_len]
    root = struct.unpack_from("<I", meta, 0)[0]
    message = _table(meta, root, meta_len)
    if message is None:
        return None
    # Message: version (short), header_type (ubyte), header (table), bodyLength (long)
    kind = _scalar(meta, message, 1, "<B", meta_len)
    body_len = _scalar(meta, message, 3, "<q", meta_len)
    if kind is None or body_len is None or body_len < 0 or body_len % 8:
        return None
    rows = 0
    if kind == _RECORD_BATCH:
        at = message[1][2] if len(message[1]) > 2 else 0
        if not at or message[0] + at + 4 > meta_len:
            return None
        batch = _table(meta, message[0] + at + struct.unpack_from("<I", meta, message[0] + at)[0], meta_len)
        length = None if batch is None else _scalar(meta, batch, 0, "<q", meta_len)
        if length is None or length < 0:
            return None
        rows = length
    return _Header(meta_len, body_len, kind, rows)


def salvage(
    fh: BinaryIO, schema: pa.Schema, *, skip: int, name: str
) -> Generator[pa.RecordBatch, None, StreamDamage | None]:
    """Yield the record batches after the first *skip* ones, reading past damage.

    Called once pyarrow's reader failed after *skip* batches. Returns the
    :class:`StreamDamage` found (``None`` for a tail cut off by a crash or a
    live writer).
    """
    fh.seek(0)
    raw = fh.read()  # only a damaged or cut-off segment comes here; batches may point into it
    data = pa.py_buffer(raw)
    view = memoryview(raw)
    size = len(raw)
    damage = StreamDamage(name)
    first = _header(view, 0)
    if first is None:
        return None
    pos = first.size
    # Step over the messages pyarrow has already read (their lengths suffice).
    for _ in range(skip):
        header = _header(view, pos)
        if header is None:
            return None  # cannot find our place again: keep what was read
        damage.rows_before += header.rows
        pos += header.size
    while pos < size:
        if view[pos : pos + 8] == _CONTINUATION + b"\x00\x00\x00\x00" or view[pos : pos + 4] == b"\x00\x00\x00\x00":
            break  # end-of-stream marker (or zero padding left by a crash)
        header = _header(view, pos)
        if header is not None and pos + header.size <= size:
            if header.kind == _RECORD_BATCH:
                batch = _batch(data, view, pos, header, schema)
                if batch is not None:
                    if damage.regions:
                        damage.rows_after += batch.num_rows
                    yield batch
                else:  # intact metadata, unreadable data: skip exactly this message
                    damage.regions.append((pos, pos + header.size))
                    damage.batches_lost += 1
                    damage.rows_lost += header.rows
            else:  # a message a capture segment never holds
                damage.regions.append((pos, pos + header.size))
                damage.unknown_regions += 1
            pos += header.size
            continue
        # metadata damaged, or a message running past the end: find the next readable batch
        nxt = _resync(raw, data, view, pos + 1, schema)
        if nxt is None:
            if header is None and not _cut_off(view, pos):
                damage.regions.append((pos, size))
                damage.unknown_regions += 1
            break  # else: the last message is cut off (a crash, or a writer still writing): not damage
        damage.regions.append((pos, nxt))
        damage.unknown_regions += 1
        pos = nxt
    return damage if damage.regions else None


def _cut_off(view: memoryview, pos: int) -> bool:
    """True if the bytes from *pos* are the start of a message whose prefix or metadata runs past the end."""
    rest = bytes(view[pos : pos + 8])
    if len(rest) < 8:
        return _CONTINUATION.startswith(rest[:4])
    if rest[:4] != _CONTINUATION:
        return not any(view[pos:])  # zeros: a file extended by a crash before its data reached the disk
    meta_len = struct.unpack_from("<i", rest, 4)[0]
    return meta_len > 0 and pos + 8 + meta_len > len(view)


def _batch(data: pa.Buffer, view: memoryview, pos: int, header: _Header, schema: pa.Schema) -> pa.RecordBatch | None:
    """The record batch at *pos*, or ``None`` if it does not read as a whole, valid batch of *schema*."""
    try:
        message = pa.ipc.read_message(data.slice(pos, header.size))
        batch = pa.ipc.read_record_batch(message, schema)
        batch.validate(full=True)
    except (pa.ArrowException, ValueError, OSError, MemoryError):
        return None
    if batch.num_rows != header.rows:
        return None
    return batch


def _resync(raw: bytes, data: pa.Buffer, view: memoryview, start: int, schema: pa.Schema) -> int | None:
    """Position of the next continuation marker from *start* that begins a readable record batch of *schema*."""
    pos = start
    while True:
        pos = raw.find(_CONTINUATION, pos)
        if pos < 0:
            return None
        header = _header(view, pos)
        if (
            header is not None
            and header.kind == _RECORD_BATCH
            and pos + header.size <= len(view)
            and _batch(data, view, pos, header, schema) is not None
        ):
            return pos
        pos += 1
