"""Capture rows of relayed frames, decoded a batch at a time on the flush thread.

The relay's event loop does the least it can per frame: it queues a
:data:`MessageEntry` (the connection's log, time, number, direction and the
raw payload) and forwards the bytes. Decoding (JSON, instruction names, the
instance uuid an outpost announces) and building Arrow columns happen here,
when the sink flushes: each distinct payload of the batch is decoded once
(an outpost repeats its HELLO, authentik its ACK), the columns that depend
only on the payload or only on the connection are gathered from small tables
with Arrow's ``take``, and the rest (time, number, instance) are built from
buffers. The rows are the ones :meth:`ConnectionLog.message` makes for the same
frames, in the same order (the test of this module checks it on real traffic).

Queue entries are one of:

* a row (``dict``): written as it is;
* ``(log, row)``: a row of a relayed connection (``close``, ``error``); its
  ``instance_uuid`` is filled in from the messages decoded before it;
* a :data:`MessageEntry`.
"""

from __future__ import annotations

from array import array
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute  # ``take``: imported now rather than in the first flush (0.3 s)

from ..events import ConnectionLog, DecodeCache, message_fields
from ..schema import COLUMNS, SCHEMA, column_array, rows_to_table

__all__ = ["MessageEntry", "Entry", "COMPRESSED", "KindCache", "entries_to_table"]

#: ``(log, ts, seq, direction, opcode, data, compressed)`` of one whole message.
MessageEntry = tuple[ConnectionLog, int, int, str, str | None, bytes, bool]
Entry = dict[str, Any] | tuple[ConnectionLog, dict[str, Any]] | MessageEntry

#: ``parse_error`` of a message whose first frame had RSV1 set.
COMPRESSED = "compressed frame (RSV1): payload kept as received, not inflated"

_CONN = ("capture_id", "conn_id", "endpoint", "path", "query", "outpost_uuid")
_TS, _INT64 = COLUMNS["ts"], COLUMNS["seq"]


_Key = tuple[str, str, str | None, bytes, bool]


class KindCache:
    """Decoded message kinds kept across batches, with their columns built once.

    A kind is what a message's columns depend on besides its connection, time and number:
    direction, endpoint, opcode, payload and the compressed flag. An outpost repeats its HELLO
    and authentik its ACK, so a flush mostly sees kinds an earlier flush already built; their
    Arrow columns are kept and only new kinds are built. Cleared at the start of a batch once it
    holds more than *limit* kinds (bounded memory for traffic whose payloads never repeat).
    """

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self.index: dict[_Key, int] = {}
        self.fields: list[dict[str, Any]] = []
        self._table: pa.Table | None = None  # the columns of fields[: self._built]
        self._built = 0

    def clear_if_full(self) -> None:
        if len(self.fields) > self.limit:
            self.index.clear()
            self.fields = []
            self._table = None
            self._built = 0

    def table(self) -> pa.Table:
        """The columns of every kind so far, one chunk, row *k* for kind *k*."""
        if self._table is None or self._built < len(self.fields):
            new = rows_to_table(self.fields[self._built :])
            self._table = new if self._table is None else pa.concat_tables([self._table, new]).combine_chunks()
            self._built = len(self.fields)
        return self._table


def _indices(values: array) -> pa.Array:
    return pa.Array.from_buffers(pa.int32(), len(values), [None, pa.py_buffer(values)])


def entries_to_table(
    entries: list[Entry], cache: DecodeCache | None = None, kinds_cache: KindCache | None = None
) -> pa.Table:
    """The capture table of *entries*, in order (see the module docstring).

    Parameters
    ----------
    entries : list
        Queue entries, oldest first.
    cache : dict, optional
        A decode cache kept across batches (see :class:`~wsreplay.events.ConnectionLog`).
    kinds_cache : KindCache, optional
        Decoded message kinds and their columns kept across batches (the same rows either way).

    Returns
    -------
    pyarrow.Table
        A table with exactly :data:`~wsreplay.schema.SCHEMA`.
    """
    rows: list[dict[str, Any]] = []
    row_pos = array("q")
    msg_pos = array("q")
    conns: dict[int, int] = {}
    conn_logs: list[ConnectionLog] = []
    conn_idx = array("i")
    if kinds_cache is None:
        kinds_cache = KindCache()
    else:
        kinds_cache.clear_if_full()
    kinds = kinds_cache.index
    templates = kinds_cache.fields
    kind_idx = array("i")
    ts = array("q")
    seq = array("q")
    instance: list[str | None] = []
    for pos, entry in enumerate(entries):
        if type(entry) is dict:
            rows.append(entry)
            row_pos.append(pos)
            continue
        if len(entry) == 2:
            log, row = cast(tuple[ConnectionLog, dict[str, Any]], entry)
            if row.get("instance_uuid") is None:
                row["instance_uuid"] = log.instance_uuid
            rows.append(row)
            row_pos.append(pos)
            continue
        log, t, n, direction, opcode, data, compressed = cast(MessageEntry, entry)
        key = (direction, log.endpoint, opcode, data, compressed)
        k = kinds.get(key)
        if k is None:
            k = kinds[key] = len(templates)
            fields = message_fields(data, endpoint=log.endpoint, opcode=opcode, cache=cache)
            if compressed:
                fields["parse_error"] = COMPRESSED
            fields["event"] = "message"
            fields["direction"] = direction
            templates.append(fields)
        found = templates[k].get("instance_uuid")
        if found and log.instance_uuid is None:
            log.instance_uuid = found  # what ConnectionLog.message does, in the same order
        c = conns.get(id(log))
        if c is None:
            c = conns[id(log)] = len(conn_logs)
            conn_logs.append(log)
        msg_pos.append(pos)
        conn_idx.append(c)
        kind_idx.append(k)
        ts.append(t)
        seq.append(n)
        instance.append(log.instance_uuid)
    parts = []
    if msg_pos:
        parts.append(_messages(kinds_cache.table(), kind_idx, conn_logs, conn_idx, ts, seq, instance))
    if rows:
        parts.append(rows_to_table(rows))
    if not parts:
        return SCHEMA.empty_table()
    if len(parts) == 1:
        return parts[0]
    order = array("q", [0]) * len(entries)  # position in the concatenation -> position in the batch
    for i, p in enumerate(msg_pos):
        order[p] = i
    for i, p in enumerate(row_pos, start=len(msg_pos)):
        order[p] = i
    table = pa.concat_tables(parts)
    return table.take(pa.Array.from_buffers(pa.int64(), len(order), [None, pa.py_buffer(order)]))


def _messages(
    kinds: pa.Table,
    kind_idx: array,
    conn_logs: list[ConnectionLog],
    conn_idx: array,
    ts: array,
    seq: array,
    instance: list[str | None],
) -> pa.Table:
    n = len(ts)
    conns = {name: column_array([getattr(log, name) for log in conn_logs], COLUMNS[name]) for name in _CONN}
    by_kind, by_conn = _indices(kind_idx), _indices(conn_idx)
    arrays = []
    for name, typ in COLUMNS.items():
        if name == "ts":
            arrays.append(pa.Array.from_buffers(_TS, n, [None, pa.py_buffer(ts)]))
        elif name == "seq":
            arrays.append(pa.Array.from_buffers(_INT64, n, [None, pa.py_buffer(seq)]))
        elif name == "instance_uuid":
            arrays.append(column_array(instance, typ))
        elif name in conns:
            arrays.append(conns[name].take(by_conn))
        else:
            arrays.append(kinds.column(name).chunk(0).take(by_kind))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)
