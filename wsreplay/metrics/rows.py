"""From the tables the recorder writes to the live metrics' state (a row observer, sans I/O).

:class:`RowMetrics` is handed every table the recorder's sink gives the
capture writer (on the flush thread, rows decoded, capture schema). It keeps
them until enough rows have come (or a scrape asks), then reads the whole
batch at once: the few columns it reads become dictionary codes and
everything else (frame and notice counts, ACK pairing, HELLO gaps) is numpy
over the codes; only per-connection results (not per-row ones) reach Python
code. The recorder hands it each batch already as codes
(:meth:`RowMetrics.observe_coded`: each message kind's and each connection's
values, and each row's kind and connection), so a recording process with live
metrics loads numpy but not pyarrow; tables from other callers are read with
pyarrow (:meth:`RowMetrics.observe`). It never imports
pandas (the recorder's path stays lean) and never reads a clock: a snapshot is
taken *at* a moment passed in.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from .health import DEFAULT_FACTOR, DEFAULT_RETENTION_S, FleetHealth, OutpostState
from .latency import AckPairing, Histogram

if TYPE_CHECKING:
    import pyarrow as pa

    from ..record.batch import Coded

__all__ = ["RowMetrics", "Snapshot"]

#: Rows buffered before a batch is read (larger batches amortise the kernels' fixed cost).
DEFAULT_BATCH_ROWS: Final = 8192
#: The only columns read: selected before batching, so payloads are never copied or filtered.
_COLUMNS: Final = [
    "ts",
    "conn_id",
    "endpoint",
    "outpost_uuid",
    "instance_uuid",
    "event",
    "direction",
    "instruction",
    "instruction_name",
    "level",
]


@dataclass(frozen=True)
class Snapshot:
    """Everything the live metrics export, at one moment.

    Attributes
    ----------
    frames : dict
        ``(endpoint, direction, instruction) -> frames`` recorded (``""`` for no instruction).
    notices : dict
        ``level -> browser notices``.
    latency : dict
        ``endpoint -> (buckets, sum, count)`` of the ACK latency histogram.
    connections_open : dict
        ``endpoint -> open connections``.
    outposts : list of OutpostState
        Every outpost within the retention window.
    rows : int
        Rows observed.
    """

    frames: dict[tuple[str, str, str], int]
    notices: dict[str, int]
    latency: dict[str, tuple[list[tuple[float, int]], float, int]]
    connections_open: dict[str, int]
    outposts: list[OutpostState]
    rows: int


class RowMetrics:
    """A row observer (``RowSink(observers=[...])``) that keeps the live metrics' state.

    Parameters
    ----------
    factor, interval, retention :
        The up rule and the retention window (see :class:`~wsreplay.metrics.health.FleetHealth`).
    batch_rows : int
        Rows buffered before a batch is read on the flush thread; a snapshot
        reads whatever is buffered first.

    Notes
    -----
    Thread-safe: :meth:`observe` (the flush thread) and :meth:`snapshot` (a
    scrape) take one lock.
    """

    def __init__(
        self,
        *,
        factor: float = DEFAULT_FACTOR,
        interval: float | None = None,
        retention: float = DEFAULT_RETENTION_S,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        self.health = FleetHealth(factor=factor, interval=interval, retention=retention)
        self.pairing = AckPairing()
        self.latency: dict[str, Histogram] = {"outpost": Histogram()}
        self.frames: dict[tuple[str, str, str], int] = {}
        self.notices: dict[str, int] = {}
        self.rows = 0
        self.batch_rows = batch_rows
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._lock = threading.Lock()

    #: The columns :meth:`observe_coded` reads (the recorder's sink fills a :class:`~wsreplay.record.batch.Coded`
    #: with them: no pyarrow in the recording process).
    CODED_COLUMNS: Final = tuple(c for c in _COLUMNS if c != "ts")

    def observe(self, table: pa.Table) -> None:
        """Take one table of capture rows (any caller; the columns are read with pyarrow)."""
        with self._lock:
            self._pending.append(table)
            self._pending_rows += table.num_rows
            if self._pending_rows >= self.batch_rows:
                self._drain()

    def observe_coded(self, coded: Coded) -> None:
        """Take one batch of the recorder's sink as keys and values (on its flush thread; numpy, no pyarrow)."""
        with self._lock:
            self._drain()  # tables handed in before, in order
            if coded.rows:
                cols = {name: _Codes.of_keys(*coded.columns[name]) for name in self.CODED_COLUMNS}
                self._consume(_Batch(coded.rows, np.frombuffer(coded.ts, dtype=np.int64), cols))

    def snapshot(self, now_ns: int) -> Snapshot:
        """The metrics at *now_ns* (ns since the epoch, on the recorder's clock)."""
        with self._lock:
            self._drain()
            self.health.expire(now_ns)
            return Snapshot(
                frames=dict(self.frames),
                notices=dict(self.notices),
                latency={ep: (h.buckets(), h.sum, h.count) for ep, h in self.latency.items()},
                connections_open=self.health.connections_open(),
                outposts=list(self.health.outposts(now_ns)),
                rows=self.rows,
            )

    # ----------------------------------------------------------------- private

    def _drain(self) -> None:
        if not self._pending:
            return
        import pyarrow as pa

        tables, self._pending, self._pending_rows = self._pending, [], 0
        # only the columns read, in one chunk each (payloads are never copied)
        table = pa.concat_tables([t.select(_COLUMNS) for t in tables]).combine_chunks()
        if table.num_rows:
            cols = {name: _Codes.of_arrow(table[name]) for name in _COLUMNS if name != "ts"}
            self._consume(_Batch(table.num_rows, _ns(table["ts"]), cols))

    def _consume(self, batch: _Batch) -> None:
        self.rows += batch.rows
        cols = batch.columns
        event, endpoint, direction, name = (cols[c] for c in ("event", "endpoint", "direction", "instruction_name"))
        msg = event.eq("message")
        self._count_frames(batch, msg, endpoint, direction, name)
        ts = batch.ts
        opened = np.flatnonzero(event.eq("open"))
        if len(opened):
            for cid, ep, op, inst, t in zip(
                *(cols[c].take(opened) for c in ("conn_id", "endpoint", "outpost_uuid", "instance_uuid")),
                ts[opened].tolist(),
            ):
                self.health.opened(cid, ep or "other", op, inst, t)
        outpost = endpoint.eq("outpost")
        valid = cols["instruction"].codes >= 0
        # a refresh: a decoded non-ACK frame to authentik (the analysis' rule); an ACK: from authentik
        ack = name.eq("ACK")
        is_req = msg & outpost & direction.eq("to_server") & valid & (name.codes >= 0) & ~ack
        is_ack = msg & outpost & direction.eq("to_peer") & ack
        pair = np.flatnonzero(is_req | is_ack)
        if len(pair):
            self._outpost_frames(batch, pair, ts, is_req[pair], name.eq("HELLO")[pair])
        ended = np.flatnonzero(event.eq("close") | event.eq("error"))
        if len(ended):
            for cid, t in zip(cols["conn_id"].take(ended), ts[ended].tolist()):
                self.health.ended(cid, t)
                self.pairing.forget(cid)

    def _count_frames(self, batch: _Batch, msg: np.ndarray, endpoint: _Codes, direction: _Codes, name: _Codes) -> None:
        if not msg.any():
            return
        sizes = (len(endpoint.values) + 1, len(direction.values) + 1, len(name.values) + 1)
        key = ((endpoint.codes[msg] + 1) * sizes[1] + direction.codes[msg] + 1) * sizes[2] + name.codes[msg] + 1
        counts = np.bincount(key, minlength=sizes[0] * sizes[1] * sizes[2])
        for k in np.flatnonzero(counts).tolist():
            e, rest = divmod(k, sizes[1] * sizes[2])
            d, n = divmod(rest, sizes[2])
            label = (endpoint.value(e - 1), direction.value(d - 1), name.value(n - 1))
            self.frames[label] = self.frames.get(label, 0) + int(counts[k])
        notices = np.flatnonzero(msg & endpoint.eq("client") & direction.eq("to_peer"))
        if len(notices):
            level = batch.columns["level"]
            codes = level.codes[notices]
            for code, n in enumerate(np.bincount(codes[codes >= 0], minlength=len(level.values)).tolist()):
                if n:
                    self.notices[level.values[code]] = self.notices.get(level.values[code], 0) + n

    def _outpost_frames(
        self, batch: _Batch, pair: np.ndarray, ts: np.ndarray, req: np.ndarray, hello: np.ndarray
    ) -> None:
        ids = batch.columns["conn_id"].values
        conn = batch.columns["conn_id"].codes[pair]
        t = ts[pair]
        self.latency["outpost"].observe(self.pairing.feed(ids, conn, t, req))
        if not req.any():
            return
        rows = np.flatnonzero(req)
        rows = rows[np.lexsort((t[rows], conn[rows]))]  # by connection, in time order within each
        c = conn[rows]
        last = np.ones(len(rows), dtype=bool)
        last[:-1] = c[1:] != c[:-1]
        ends = np.flatnonzero(last)
        starts = np.concatenate([[0], ends[:-1] + 1])
        at = pair[rows[ends]]
        inst = batch.columns["instance_uuid"].take(at)
        outpost = batch.columns["outpost_uuid"].take(at)
        h, tr = hello[rows], t[rows]
        for k, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
            if outpost[k] is None:
                continue
            seg = slice(s, e + 1)
            self.health.refreshed(
                ids[c[e]], outpost[k], inst[k], last_ns=int(tr[e]), hellos_ns=tr[seg][h[seg]].tolist()
            )


@dataclass(frozen=True)
class _Batch:
    """The rows read at once: their number, times (ns) and the other columns read, as codes."""

    rows: int
    ts: np.ndarray
    columns: dict[str, _Codes]


class _Codes:
    """A column as dictionary codes (``-1``: null) and the values they stand for."""

    __slots__ = ("codes", "values")

    def __init__(self, codes: np.ndarray, values: list[Any]) -> None:
        self.codes = codes
        self.values = values

    @classmethod
    def of_arrow(cls, column: pa.Array | pa.ChunkedArray) -> _Codes:
        """A pyarrow column, dictionary-encoded."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        encoded = column if pa.types.is_dictionary(column.type) else column.dictionary_encode()
        codes = np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        return cls(codes, encoded.dictionary.to_pylist())

    @classmethod
    def of_keys(cls, per_key: Sequence[Any], keys: array) -> _Codes:
        """Row *i* is ``per_key[keys[i]]`` (a :class:`~wsreplay.record.batch.Coded` column)."""
        values = list(dict.fromkeys(v for v in per_key if v is not None))
        lookup = {v: i for i, v in enumerate(values)}
        key_codes = np.fromiter((-1 if v is None else lookup[v] for v in per_key), dtype=np.int64, count=len(per_key))
        return cls(key_codes[np.frombuffer(keys, dtype=np.int32)] if len(keys) else key_codes[:0], values)

    def take(self, rows: np.ndarray) -> list[Any]:
        """The values of *rows* (``None`` for null)."""
        values = self.values
        return [values[c] if c >= 0 else None for c in self.codes[rows].tolist()]

    def eq(self, value: str) -> np.ndarray:
        """Rows equal to *value* (a bool array)."""
        try:
            return self.codes == self.values.index(value)
        except ValueError:
            return np.zeros(len(self.codes), dtype=bool)

    def value(self, code: int) -> str:
        """The value of *code*, ``""`` for null."""
        return self.values[code] if code >= 0 else ""


def _ns(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A timestamp column as int64 nanoseconds."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return np.asarray(pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
