"""One segment file: read an Arrow stream (even a cut-off one), seal it to Parquet.

Also the format-version check shared by every reader.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..exceptions import CaptureDamageWarning, CaptureFormatError, CaptureVersionError
from ..schema import FORMAT_VERSION, SCHEMA, SUPPORTED_VERSIONS, VERSION_KEY, conform_table
from .files import PARQUET_SUFFIX, STREAM_SUFFIX, create_locked, try_lock
from .salvage import StreamDamage, salvage

__all__ = [
    "STREAM_SUFFIX",
    "STREAM_OPTIONS",
    "PARQUET_SUFFIX",
    "read_stream",
    "StreamDamage",
    "iter_stream",
    "seal_stream",
    "try_lock",
    "create_locked",
    "seal_table",
    "write_parquet",
    "check_version",
    "check_schema",
    "PARQUET_OPTIONS",
]


#: In-progress segments: each record batch compressed on its own (a crash still
#: leaves every whole batch readable), so a busy recorder writes little to disk.
STREAM_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")

#: Rows per Parquet row group: small enough for time filters to skip most of a
#: long capture, large enough to compress well.
ROW_GROUP_SIZE = 1 << 20

#: Free-text columns: no min/max statistics (a page header would carry two copies of long strings
#: that no filter uses); every column a reader filters on (ts, endpoint, outpost_uuid, ...) keeps them.
_NO_STATISTICS = frozenset(
    {"payload", "payload_bytes", "message", "query", "user_agent", "close_reason", "parse_error", "tags"}
)


def _column_encoding() -> dict[str, str]:
    enc = {"ts": "DELTA_BINARY_PACKED", "seq": "DELTA_BINARY_PACKED"}
    if int(pa.__version__.split(".")[0]) >= 17:  # byte-stream-split of integers: Parquet C++ 17+
        enc |= {"size": "BYTE_STREAM_SPLIT", "instruction": "BYTE_STREAM_SPLIT"}
    return enc


#: Parquet writer settings of sealed segments (and compacted files): zstd level 6, dictionaries for
#: strings, delta encoding for the (sorted, dense) timestamps and sequence numbers, byte-stream-split
#: for the small integers, statistics for every column but free text. 9.97 bytes per HELLO/ACK row
#: against 10.53 with zstd 3 and statistics everywhere, written as fast (bench/bench_store.py).
PARQUET_OPTIONS: dict[str, object] = {
    "compression": "zstd",
    "compression_level": 6,
    "use_dictionary": [f.name for f in SCHEMA if f.type == pa.string()],
    "column_encoding": _column_encoding(),
    "write_statistics": [f.name for f in SCHEMA if f.name not in _NO_STATISTICS],
}


def check_schema(schema: pa.Schema, where: Path | str) -> None:
    """Raise unless every capture column *schema* has carries its capture type."""
    for f in schema:
        want = SCHEMA.field(f.name).type if f.name in SCHEMA.names else None
        have = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        if want is not None and have != want:
            raise CaptureFormatError(
                f"{where}: column {f.name!r} is {have}, the capture format says {want}; "
                "this file does not follow the wsreplay capture format"
            )


def check_parquet(path: Path) -> bool:
    """Raise unless *path* is a capture Parquet file this wsreplay reads; False if it no longer exists."""
    try:
        schema = pq.read_schema(str(path))
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:  # a damaged footer may hold non-UTF-8 names
        if not path.is_file():
            return False
        detail = " ".join(str(exc).split())
        raise CaptureFormatError(f"{path} is not a readable Parquet file ({detail}); is it a capture?") from exc
    check_version(schema.metadata, path)
    check_schema(schema, path)
    return True


def check_version(metadata: dict[bytes, bytes] | None, where: Path | str) -> None:
    """Raise unless *metadata* names a format version this wsreplay reads."""
    raw = (metadata or {}).get(VERSION_KEY)
    if raw is None:
        raise CaptureFormatError(
            f"{where} is not a wsreplay capture (no {VERSION_KEY.decode()} in its metadata); "
            "import foreign files with `wsreplay import`"
        )
    try:
        version = int(raw)
    except ValueError:
        raise CaptureFormatError(f"{where} has an unreadable capture format version {raw!r}") from None
    if version not in SUPPORTED_VERSIONS:
        newer = version > FORMAT_VERSION
        hint = "upgrade wsreplay to read it" if newer else "convert it with an older wsreplay"
        raise CaptureVersionError(
            f"{where} uses capture format version {version}; this wsreplay reads {sorted(SUPPORTED_VERSIONS)}: {hint}"
        )


def read_stream(
    source: Path | BinaryIO, *, name: Path | str | None = None, damage: list[StreamDamage] | None = None
) -> pa.Table:
    """Read every whole record batch of an Arrow IPC stream segment.

    A stream cut off by a crash (a missing end marker, half a batch at the end)
    yields the batches before the cut. A file too short to hold the schema is
    an empty segment. A damaged batch in the middle is skipped with a
    :class:`~wsreplay.exceptions.CaptureDamageWarning`; the batches after it are kept.

    Parameters
    ----------
    source : path or binary file
        The segment, or the segment already open (a live recorder may seal and
        unlink it meanwhile; an open file stays readable).
    name : path or str, optional
        The segment's name in messages (default: *source*).
    damage : list, optional
        Gets a :class:`StreamDamage` appended if part of the stream could not be read.

    Raises
    ------
    CaptureFormatError
        If the file is not an Arrow stream or not a capture.
    """
    tables = [pa.Table.from_batches([b]) for b in iter_stream(source, name=name, damage=damage)]
    if not tables:
        return SCHEMA.empty_table()
    return conform_table(pa.concat_tables(tables) if len(tables) > 1 else tables[0])


def iter_stream(
    source: Path | BinaryIO, *, name: Path | str | None = None, damage: list[StreamDamage] | None = None
) -> Iterator[pa.RecordBatch]:
    """Yield the whole record batches of a stream segment, one at a time (see :func:`read_stream`).

    Damage found in the middle of the stream is warned about once the stream
    is read, and appended to *damage* when given.
    """
    if name is None:
        name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "stream")
    where = str(name)
    with contextlib.ExitStack() as stack:
        fh = stack.enter_context(open(source, "rb")) if isinstance(source, (str, os.PathLike)) else source
        fh.seek(0)
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return
        head = fh.read(8)
        fh.seek(0)
        try:
            reader = pa.ipc.open_stream(fh)
        except (pa.ArrowException, OSError, MemoryError) as exc:  # a damaged schema may name a type arrow lacks
            if _schema_cut_off(head, size):
                return  # the writer died while writing the schema
            detail = " ".join(str(exc).split())  # one line, whatever pyarrow says
            raise CaptureFormatError(f"{where} is not an Arrow stream segment: {detail}") from exc
        try:
            check_version(reader.schema.metadata, where)
            check_schema(reader.schema, where)
        except UnicodeDecodeError:
            raise CaptureFormatError(f"{where}: its schema is damaged (a name that is not UTF-8)") from None
        good = 0
        while True:
            try:
                batch = reader.read_next_batch()
                batch.validate(full=True)  # damaged bytes may still decode: never hand on a batch that lies
            except StopIteration:
                return
            except (pa.ArrowException, OSError, MemoryError):  # a damaged length may ask for exabytes
                break  # cut off by a crash, or damaged: see what follows
            good += 1
            yield batch
        found = yield from salvage(fh, reader.schema, skip=good, name=str(where))
        if found is not None:
            if damage is not None:
                damage.append(found)
            warnings.warn(str(found), CaptureDamageWarning, stacklevel=2)


_CONTINUATION = b"\xff\xff\xff\xff"


def _schema_cut_off(head: bytes, size: int) -> bool:
    """True if the file is the beginning of an Arrow stream cut inside its schema message."""
    if len(head) < 8:
        return _CONTINUATION.startswith(head[:4])
    if not head.startswith(_CONTINUATION):
        return False
    length = int.from_bytes(head[4:8], "little", signed=True)
    return 0 < length and size < 8 + length


@contextlib.contextmanager
def _tmp_sink(tmp: Path) -> Iterator[BinaryIO]:
    """Create *tmp* and hold its lock while it is written (see :func:`create_locked`)."""
    sink = create_locked(tmp)
    try:
        yield sink
    finally:
        sink.close()


def _commit(sink: BinaryIO, tmp: Path, target: Path) -> None:
    """Make the finished *tmp* durable, then move it into place (still under its lock)."""
    os.fsync(sink.fileno())
    os.replace(tmp, target)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write *table* as a capture Parquet file (atomic: a temporary file, then a rename)."""
    table = conform_table(table).replace_schema_metadata(SCHEMA.metadata)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with _tmp_sink(tmp) as sink:
            with pq.ParquetWriter(sink, SCHEMA, **PARQUET_OPTIONS) as writer:  # type: ignore[arg-type]
                writer.write_table(table, row_group_size=ROW_GROUP_SIZE)
            _commit(sink, tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def seal_table(table: pa.Table, path: Path) -> None:
    """Seal a segment's rows into Parquet at *path*, sorted by time within each connection."""
    if table.num_rows > 1:
        table = table if _is_sorted(table) else table.sort_by([("ts", "ascending"), ("seq", "ascending")])
    write_parquet(table, path)


def seal_stream(path: Path, target: Path, *, damage: list[StreamDamage] | None = None) -> int:
    """Seal a stream segment into Parquet at *target*; return the number of rows.

    A segment in time order (the normal case) is copied one row group at a
    time, so memory stays at one row group whatever the segment's size; one
    that is not falls back to reading it whole and sorting it. Nothing is
    written for an empty segment.
    """
    tmp = target.with_name(target.name + ".tmp")
    rows, last = 0, None
    pending: list[pa.Table] = []
    pending_rows = 0
    try:
        with contextlib.ExitStack() as stack:
            writer = sink = None

            def write(tables: list[pa.Table], n: int) -> None:
                nonlocal writer, sink
                if writer is None:
                    sink = stack.enter_context(_tmp_sink(tmp))
                    writer = stack.enter_context(pq.ParquetWriter(sink, SCHEMA, **PARQUET_OPTIONS))  # type: ignore[arg-type]
                writer.write_table(pa.concat_tables(tables), row_group_size=n)

            for batch in iter_stream(path, damage=damage):
                if batch.num_rows == 0:
                    continue
                table = conform_table(pa.Table.from_batches([batch]))
                column = table.column("ts").combine_chunks()
                # the values buffer as numpy: Array.to_numpy() would import pandas into the recorder
                ts = (
                    None
                    if column.null_count
                    else np.frombuffer(column.buffers()[1], np.int64)[column.offset :][: len(column)]
                )
                if ts is None or (last is not None and ts[0] < last) or not bool((ts[1:] >= ts[:-1]).all()):
                    stack.close()
                    tmp.unlink(missing_ok=True)
                    whole = read_stream(path, damage=damage)
                    seal_table(whole, target)
                    return whole.num_rows
                last = int(ts[-1])
                pending.append(table)
                pending_rows += table.num_rows
                if pending_rows >= ROW_GROUP_SIZE:
                    write(pending, pending_rows)
                    rows += pending_rows
                    pending, pending_rows = [], 0
            if pending:
                write(pending, pending_rows)
                rows += pending_rows
            if writer is not None and sink is not None:
                writer.close()  # the footer, before the file is fsync'ed and renamed into place
                _commit(sink, tmp, target)
        return rows
    finally:
        tmp.unlink(missing_ok=True)


def _is_sorted(table: pa.Table) -> bool:
    ts = table.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
    return bool((ts[1:] >= ts[:-1]).all())
