"""From the tables the recorder writes to the live metrics' state (a row observer, sans I/O).

:class:`RowMetrics` is handed every table the recorder's sink gives the
capture writer (on the flush thread, rows decoded, capture schema). It keeps
them until enough rows have come (or a scrape asks), then reads the whole
batch at once: the few string columns it reads are dictionary-encoded with
:mod:`pyarrow.compute` and everything else (frame and notice counts, ACK
pairing, HELLO gaps) is numpy over their codes; only per-connection results
(not per-row ones) reach Python code. It never imports
pandas (the recorder's path stays lean) and never reads a clock: a snapshot is
taken *at* a moment passed in.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .health import DEFAULT_FACTOR, DEFAULT_RETENTION_S, FleetHealth, OutpostState
from .latency import AckPairing, Histogram

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

    def observe(self, table: pa.Table) -> None:
        """Take one table of capture rows (called by the sink on its flush thread)."""
        with self._lock:
            self._pending.append(table)
            self._pending_rows += table.num_rows
            if self._pending_rows >= self.batch_rows:
                self._drain()

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
        tables, self._pending, self._pending_rows = self._pending, [], 0
        # only the columns read, in one chunk each (payloads are never copied)
        table = pa.concat_tables([t.select(_COLUMNS) for t in tables]).combine_chunks()
        if table.num_rows:
            self._consume(table)

    def _consume(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        event, endpoint, direction, name = (
            _Codes(table[c]) for c in ("event", "endpoint", "direction", "instruction_name")
        )
        msg = event.eq("message")
        self._count_frames(table, msg, endpoint, direction, name)
        ts = _ns(table["ts"])
        opened = np.flatnonzero(event.eq("open"))
        if len(opened):
            cols = table.take(pa.array(opened))
            for cid, ep, op, inst, t in zip(
                *(cols[c].to_pylist() for c in ("conn_id", "endpoint", "outpost_uuid", "instance_uuid")),
                ts[opened].tolist(),
            ):
                self.health.opened(cid, ep or "other", op, inst, t)
        outpost = endpoint.eq("outpost")
        valid = np.asarray(table["instruction"].is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        # a refresh: a decoded non-ACK frame to authentik (the analysis' rule); an ACK: from authentik
        ack = name.eq("ACK")
        is_req = msg & outpost & direction.eq("to_server") & valid & (name.codes >= 0) & ~ack
        is_ack = msg & outpost & direction.eq("to_peer") & ack
        pair = np.flatnonzero(is_req | is_ack)
        if len(pair):
            self._outpost_frames(table, pair, ts, is_req[pair], name.eq("HELLO")[pair])
        ended = np.flatnonzero(event.eq("close") | event.eq("error"))
        if len(ended):
            for cid, t in zip(table["conn_id"].take(pa.array(ended)).to_pylist(), ts[ended].tolist()):
                self.health.ended(cid, t)
                self.pairing.forget(cid)

    def _count_frames(
        self, table: pa.Table, msg: np.ndarray, endpoint: _Codes, direction: _Codes, name: _Codes
    ) -> None:
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
            level = _Codes(table["level"].take(pa.array(notices)))
            for code, n in enumerate(np.bincount(level.codes[level.codes >= 0], minlength=len(level.values)).tolist()):
                if n:
                    self.notices[level.values[code]] = self.notices.get(level.values[code], 0) + n

    def _outpost_frames(
        self, table: pa.Table, pair: np.ndarray, ts: np.ndarray, req: np.ndarray, hello: np.ndarray
    ) -> None:
        conn_arr = table["conn_id"].combine_chunks().take(pa.array(pair)).dictionary_encode()
        ids = conn_arr.dictionary.to_pylist()
        conn = np.asarray(conn_arr.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
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
        at = pa.array(pair[rows[ends]])
        inst = table["instance_uuid"].take(at).to_pylist()
        outpost = table["outpost_uuid"].take(at).to_pylist()
        h, tr = hello[rows], t[rows]
        for k, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
            if outpost[k] is None:
                continue
            seg = slice(s, e + 1)
            self.health.refreshed(
                ids[c[e]], outpost[k], inst[k], last_ns=int(tr[e]), hellos_ns=tr[seg][h[seg]].tolist()
            )


class _Codes:
    """A string column as dictionary codes (``-1``: null) and the values they stand for."""

    __slots__ = ("codes", "values")

    def __init__(self, column: pa.Array | pa.ChunkedArray) -> None:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        encoded = column if pa.types.is_dictionary(column.type) else column.dictionary_encode()
        self.values: list[str] = encoded.dictionary.to_pylist()
        self.codes = np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)

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
    return np.asarray(pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
