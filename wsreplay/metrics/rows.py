"""From the tables the recorder writes to the live metrics' state (a row observer, sans I/O).

:class:`RowMetrics` is handed every table the recorder's sink gives the
capture writer (on the flush thread, rows decoded, capture schema). It keeps
them until enough rows have come (or a scrape asks), then reads the whole
batch with vectorised :mod:`pyarrow.compute` kernels: frame and notice counts
are group-bys, ACK pairing and HELLO gaps are numpy over the batch, and only
per-connection results (not per-row ones) reach Python code. It never imports
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
DEFAULT_BATCH_ROWS: Final = 4096
_LIFE_EVENTS: Final = pa.array(["open", "close", "error"])
_FRAME_KEYS: Final = ["endpoint", "direction", "instruction_name"]


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
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        if table.num_rows:
            self._consume(table)

    def _consume(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        event = table["event"]
        msgs = table.filter(pc.equal(event, "message"))
        if msgs.num_rows:
            self._count_frames(msgs)
        life = table.filter(pc.is_in(event, value_set=_LIFE_EVENTS))
        opened = life.filter(pc.equal(life["event"], "open"))
        for cid, ep, op, inst, ts in zip(
            *(opened[c].to_pylist() for c in ("conn_id", "endpoint", "outpost_uuid", "instance_uuid")),
            _ns(opened["ts"]).tolist(),
        ):
            self.health.opened(cid, ep or "other", op, inst, ts)
        if msgs.num_rows:
            self._outpost_frames(msgs.filter(pc.equal(msgs["endpoint"], "outpost")))
        ended = life.filter(pc.not_equal(life["event"], "open"))
        for cid, ts in zip(ended["conn_id"].to_pylist(), _ns(ended["ts"]).tolist()):
            self.health.ended(cid, ts)
            self.pairing.forget(cid)

    def _count_frames(self, msgs: pa.Table) -> None:
        counts = msgs.select(_FRAME_KEYS).group_by(_FRAME_KEYS).aggregate([([], "count_all")])
        for ep, d, name, n in zip(*(counts[c].to_pylist() for c in (*_FRAME_KEYS, "count_all"))):
            key = (ep or "", d or "", name or "")
            self.frames[key] = self.frames.get(key, 0) + n
        client = pc.and_(pc.equal(msgs["endpoint"], "client"), pc.equal(msgs["direction"], "to_peer"))
        levels = msgs.filter(pc.and_(client, pc.is_valid(msgs["level"])))["level"]
        if len(levels):
            for item in pc.value_counts(levels).to_pylist():
                self.notices[item["values"]] = self.notices.get(item["values"], 0) + item["counts"]

    def _outpost_frames(self, out: pa.Table) -> None:
        if not out.num_rows:
            return
        name = out["instruction_name"]
        to_server = pc.equal(out["direction"], "to_server")
        # a refresh: a decoded non-ACK frame to authentik (the analysis' rule); an ACK: from authentik
        is_req = pc.and_(pc.and_(to_server, pc.is_valid(out["instruction"])), pc.not_equal(name, "ACK"))
        is_ack = pc.and_(pc.equal(out["direction"], "to_peer"), pc.equal(name, "ACK"))
        keep = pc.fill_null(pc.or_(is_req, is_ack), False)
        pair = out.filter(keep)
        if not pair.num_rows:
            return
        req = pc.fill_null(is_req.filter(keep), False).to_numpy(zero_copy_only=False)
        conn_arr = pair["conn_id"].combine_chunks().dictionary_encode()
        ids = conn_arr.dictionary.to_pylist()
        conn = conn_arr.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        ts = _ns(pair["ts"])
        self.latency["outpost"].observe(self.pairing.feed(ids, conn, ts, req))
        if req.any():
            self._refreshes(pair, ids, conn, ts, req)

    def _refreshes(self, pair: pa.Table, ids: list[str], conn: np.ndarray, ts: np.ndarray, req: np.ndarray) -> None:
        rows = np.flatnonzero(req)
        rows = rows[np.lexsort((ts[rows], conn[rows]))]  # by connection, in time order within each
        c = conn[rows]
        last = np.ones(len(rows), dtype=bool)
        last[:-1] = c[1:] != c[:-1]
        ends = np.flatnonzero(last)
        starts = np.concatenate([[0], ends[:-1] + 1])
        at = pa.array(rows[ends])
        inst = pair["instance_uuid"].take(at).to_pylist()
        outpost = pair["outpost_uuid"].take(at).to_pylist()
        hello = pc.fill_null(pc.equal(pair["instruction_name"], "HELLO"), False).to_numpy(zero_copy_only=False)[rows]
        t = ts[rows]
        for k, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
            op = outpost[k]
            if op is None:
                continue
            seg = slice(s, e + 1)
            self.health.refreshed(ids[c[e]], op, inst[k], last_ns=int(t[e]), hellos_ns=t[seg][hello[seg]].tolist())


def _ns(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A timestamp column as int64 nanoseconds."""
    return np.asarray(pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
