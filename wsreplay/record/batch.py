"""Capture rows of relayed frames, decoded and encoded a batch at a time on the flush thread (no pyarrow).

The relay's event loop does the least it can per frame: it queues a
:data:`MessageEntry` (the connection's log, time, number, direction and the
raw payload) and forwards the bytes. Decoding (JSON, instruction names, the
instance uuid an outpost announces) and encoding the Arrow record batch happen
here, when the sink flushes: each distinct payload is decoded and its column
values encoded once (an outpost repeats its HELLO, authentik its ACK; the
:class:`KindCache` keeps them across batches), the values that depend only on
the connection once per batch, and each column of the batch is then a gather
of those and a join of bytes (:mod:`wsreplay.store.ipc` writes the message).
The rows are the ones :meth:`ConnectionLog.message` makes for the same
frames, in the same order (the test of this module checks it on real traffic).

No pyarrow or numpy here: the recorder's process never loads them (about
70 MB of shared libraries). A value the hand encoder does not take as it is
(say a ``str`` that is not UTF-8 in a row handed to the writer) goes to
pyarrow for its column (:mod:`wsreplay.store.batches`).

Queue entries are one of:

* a row (``dict``): written as it is;
* ``(log, row)``: a row of a relayed connection (``close``, ``error``); its
  ``instance_uuid`` is filled in from the messages decoded before it;
* a :data:`MessageEntry`.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, cast

from ..columns import COLUMN_TYPES, STRING
from ..events import ConnectionLog, DecodeCache, message_fields
from ..store.batches import Keyed, encode_column, encode_value, gather_column, gatherer
from ..store.ipc import Column, record_batch_message

__all__ = [
    "MessageEntry",
    "Entry",
    "COMPRESSED",
    "KindCache",
    "entries_to_batch",
    "Coded",
]

#: ``(log, ts, seq, direction, opcode, data, compressed)`` of one whole message.
MessageEntry = tuple[ConnectionLog, int, int, str, str | None, bytes, bool]
Entry = dict[str, Any] | tuple[ConnectionLog, dict[str, Any]] | MessageEntry

#: ``parse_error`` of a message whose first frame had RSV1 set.
COMPRESSED = "compressed frame (RSV1): payload kept as received, not inflated"

#: Columns that depend only on the connection.
_CONN: Final = ("capture_id", "conn_id", "endpoint", "path", "query", "outpost_uuid")
#: Columns of each row (time, number, the instance uuid known at that moment).
_ROW: Final = ("ts", "seq", "instance_uuid")
#: Columns that depend only on the message kind (direction, endpoint, opcode, payload, compressed).
_KIND: Final = tuple(c for c in COLUMN_TYPES if c not in _CONN and c not in _ROW)


_Key = tuple[str, str, str | None, bytes, bool]


class KindCache:
    """Decoded message kinds kept across batches, with their column values encoded once.

    A kind is what a message's columns depend on besides its connection, time and number:
    direction, endpoint, opcode, payload and the compressed flag. An outpost repeats its HELLO
    and authentik its ACK, so a flush mostly sees kinds an earlier flush already decoded. Cleared
    at the start of a batch once it holds more than *limit* kinds (bounded memory for traffic
    whose payloads never repeat).
    """

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self.index: dict[_Key, int] = {}
        self.fields: list[dict[str, Any]] = []
        #: The instance uuid each kind names (a HELLO), or None.
        self.instances: list[str | None] = []
        #: Column -> the encoded value of each kind, kind *k* at position *k*.
        self.encoded: dict[str, Keyed] = {c: Keyed(COLUMN_TYPES[c]) for c in _KIND}

    def clear_if_full(self) -> None:
        if len(self.fields) > self.limit:
            self.index.clear()
            self.fields = []
            self.instances = []
            self.encoded = {c: Keyed(COLUMN_TYPES[c]) for c in _KIND}

    def add(self, fields: dict[str, Any]) -> int:
        """Keep one more kind; its number."""
        for c, col in self.encoded.items():
            col.append(encode_value(fields.get(c), col.typ))
        self.fields.append(fields)
        self.instances.append(fields.get("instance_uuid") or None)
        return len(self.fields) - 1


def entries_to_batch(
    entries: list[Entry],
    cache: DecodeCache | None = None,
    kinds_cache: KindCache | None = None,
    coded: Coded | None = None,
) -> bytes:
    """The Arrow IPC record batch message of *entries*, in order (see the module docstring).

    Parameters
    ----------
    entries : list
        Queue entries, oldest first.
    cache : dict, optional
        A decode cache kept across batches (see :class:`~wsreplay.events.ConnectionLog`).
    kinds_cache : KindCache, optional
        Decoded message kinds and their column values kept across batches (the same rows either way).
    coded : Coded, optional
        Filled with the batch's columns it names, as keys and values (for row observers).

    Returns
    -------
    bytes
        One record batch of the capture schema, to append after :data:`SCHEMA_MESSAGE`.
    """
    if kinds_cache is None:
        kinds_cache = KindCache()
    else:
        kinds_cache.clear_if_full()
    kinds = kinds_cache.index
    found_of = kinds_cache.instances
    rows: list[dict[str, Any]] = []
    conns: dict[ConnectionLog, int] = {}
    conn_logs: list[ConnectionLog] = []
    kind_idx = array("i")
    conn_idx = array("i")
    ts = array("q")  # a row's own ts and seq (which may be anything) are in its dict: 0 here
    seq = array("q")
    instance: list[Any] = []
    row_marks: list[int] = []  # positions (in the batch) of rows, which get a kind and a connection of their own
    add_kind, add_conn, add_ts, add_seq, add_instance = (
        kind_idx.append,
        conn_idx.append,
        ts.append,
        seq.append,
        instance.append,
    )
    for entry in entries:
        if type(entry) is tuple and len(entry) == 7:
            log, t, n, direction, opcode, data, compressed = entry  # a MessageEntry
            key = (direction, log.endpoint, opcode, data, compressed)
            k = kinds.get(key)
            if k is None:
                fields = message_fields(data, endpoint=log.endpoint, opcode=opcode, cache=cache)
                if compressed:
                    fields["parse_error"] = COMPRESSED
                fields["event"] = "message"
                fields["direction"] = direction
                k = kinds[key] = kinds_cache.add(fields)
            if log.instance_uuid is None and found_of[k]:
                log.instance_uuid = found_of[k]  # what ConnectionLog.message does, in the same order
            c = conns.get(log)
            if c is None:
                c = conns[log] = len(conn_logs)
                conn_logs.append(log)
                if log.encoded is None:  # a connection's columns never change: encoded once
                    log.encoded = [encode_value(getattr(log, name), COLUMN_TYPES[name]) for name in _CONN]
            add_conn(c)
            add_kind(k)
            add_ts(t)
            add_seq(n)
            add_instance(log.instance_uuid)
            continue
        if type(entry) is dict:
            row = cast(dict[str, Any], entry)
        else:
            log, row = cast(tuple[ConnectionLog, dict[str, Any]], entry)
            if row.get("instance_uuid") is None:
                row["instance_uuid"] = log.instance_uuid
        row_marks.append(len(ts))
        rows.append(row)
        add_kind(0)
        add_conn(0)
        add_ts(0)
        add_seq(0)
        add_instance(row.get("instance_uuid"))
    kinds_total = len(kinds_cache.fields)
    for j, pos in enumerate(row_marks):
        kind_idx[pos] = kinds_total + j
        conn_idx[pos] = len(conn_logs) + j
    parts = _Parts(kinds_cache, rows, row_marks, conn_logs, kind_idx, conn_idx, ts, seq, instance)
    message = record_batch_message(len(ts), _columns(parts))
    if coded is not None:
        coded.fill(parts)
    return message


class Coded:
    """Some columns of one batch, as each row's key and the keys' Python values (for row observers).

    What :mod:`wsreplay.metrics.rows` reads of each batch, without pyarrow: a
    column that depends on the message kind is ``(values of each kind, kind of
    each row)``, one that depends on the connection the same by connection, and
    ``ts`` the rows' times in ns. Pass one to :func:`entries_to_batch` (``coded=``)
    with the names of the columns wanted; it is filled with that batch.
    """

    __slots__ = ("columns", "names", "rows", "ts")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.rows = 0
        self.ts = array("q")
        #: column -> (the value of each key, the key of each row)
        self.columns: dict[str, tuple[list[Any], array]] = {}

    def fill(self, parts: _Parts) -> None:
        """Take the columns named of one batch's parts (:func:`entries_to_batch` calls it)."""
        self.rows = len(parts.ts)
        self.ts = array("q", parts.ts)
        for pos, row in zip(parts.row_marks, parts.rows, strict=True):
            t = row.get("ts")
            self.ts[pos] = t if type(t) is int else 0  # a hand-made row's odd time: the observer sees 0
        for name in self.names:
            if name != "ts":
                self.columns[name] = parts.keyed(name)


@dataclass(slots=True)
class _Parts:
    """One batch taken apart: each row's message kind and connection (or row of its own), time, number, instance.

    A batch's dict rows are keys of their own, after the kinds and after the connections.
    """

    kinds: KindCache
    rows: list[dict[str, Any]]
    row_marks: list[int]  # the position of each of *rows* in the batch
    conn_logs: list[ConnectionLog]
    kind_idx: array
    conn_idx: array
    ts: array  # 0 at the rows' positions: their own values are in their dicts
    seq: array
    instance: list[Any]

    def keyed(self, name: str) -> tuple[list[Any], array]:
        """Column *name* as the Python value of each key and the key of each row."""
        rows = self.rows
        if name in _CONN:
            return [getattr(log, name) for log in self.conn_logs] + [r.get(name) for r in rows], self.conn_idx
        if name in _KIND:
            return [f.get(name) for f in self.kinds.fields] + [r.get(name) for r in rows], self.kind_idx
        if name == "instance_uuid":  # a few distinct values
            memo: dict[Any, int] = {}
            codes = array("i", [memo[v] if v in memo else memo.setdefault(v, len(memo)) for v in self.instance])
            return list(memo), codes
        raise ValueError(f"column {name!r} does not depend on a message kind or a connection")

    def raw(self, name: str) -> list[Any]:
        """The Python values of one column, row by row (for the pyarrow fall-back)."""
        if name in ("ts", "seq"):
            values = list(self.ts if name == "ts" else self.seq)
            for pos, row in zip(self.row_marks, self.rows, strict=True):
                values[pos] = row.get(name)
            return values
        per, keys = self.keyed(name)
        return [per[k] for k in keys]


def _columns(parts: _Parts) -> list[Column]:
    kinds, rows = parts.kinds, parts.rows
    columns: list[Column] = []
    kinds_used, conns_used = set(parts.kind_idx), set(parts.conn_idx)
    by_kind, by_conn = gatherer(parts.kind_idx), gatherer(parts.conn_idx)
    for name, typ in COLUMN_TYPES.items():
        raw = partial(parts.raw, name)
        if name in _CONN:
            at = _CONN.index(name)
            per = Keyed(typ, [log.encoded[at] for log in parts.conn_logs])  # type: ignore[index]
            for r in rows:
                per.append(encode_value(r.get(name), typ))
            columns.append(gather_column(name, per, parts.conn_idx, raw, conns_used, by_conn))
        elif name in _KIND:
            col = kinds.encoded[name]
            state = col.mark()
            try:  # a batch's rows are keys of their own, after the kinds: appended for this batch only
                for r in rows:
                    col.append(encode_value(r.get(name), typ))
                columns.append(gather_column(name, col, parts.kind_idx, raw, kinds_used, by_kind))
            finally:
                if rows:
                    col.truncate(state)
        elif typ == STRING:  # the instance uuid
            values, codes = parts.keyed(name)
            keyed = Keyed(typ, [encode_value(v, typ) for v in values])
            columns.append(gather_column(name, keyed, codes, raw, set(range(len(values)))))
        else:  # ts, seq: ints from the relay; a row's own values may be anything
            ints: Any = parts.ts if name == "ts" else parts.seq
            if rows:
                ints = list(ints)
                for pos, row in zip(parts.row_marks, rows, strict=True):
                    ints[pos] = encode_value(row.get(name), typ)
            columns.append(encode_column(name, ints, raw))
    return columns
