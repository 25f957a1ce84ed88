"""The virtual capture's columns: the driver's rows as capture tables, sealed into segments.

Row values come from :class:`wsreplay.events.ConnectionLog` itself (one
template row per process and kind of event, :func:`templates`); only
timestamps, sequence numbers, connection ids, query strings and peers are
filled in, column by column with numpy and pyarrow, in time order
(:class:`CaptureColumns`). The rows are sealed straight into Parquet segments
with the store's own :func:`~wsreplay.store.segments.seal_table`
(:func:`write_segments`), or go through
:meth:`wsreplay.store.CaptureWriter.write_table` like a live recording
(:func:`write_through_writer`).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..events import ConnectionLog
from ..protocol import encode_ack, encode_notice
from ..schema import SCHEMA
from ..store import CaptureWriter
from ..store.segments import PARQUET_SUFFIX, seal_table
from .plan import Plan
from .virtual_driver import REFUSED_STATUS, VirtualDriver

__all__ = [
    "CaptureColumns",
    "templates",
    "write_segments",
    "write_through_writer",
    "CHUNK_ROWS",
    "SEGMENT_ROWS",
    "FLUSH_ROWS",
]

#: Rows built per record batch (small batches stay in the allocator's cache).
CHUNK_ROWS: Final = 1 << 16
#: Rows per Parquet segment written directly.
SEGMENT_ROWS: Final = 1 << 21
#: Rows handed to the capture writer per flush (``via_writer=True``).
FLUSH_ROWS: Final = 1 << 20

#: What the recorder writes when the peer's TCP connection dies without a close frame.
DROP_REASON: Final = "peer closed the connection without a close frame"
#: What the recorder writes when it cannot reach a restarting authentik.
REFUSED_REASON: Final = "upstream unreachable: connection refused"


def templates(plan: Plan, capture_id: str) -> dict[str, pa.Array]:
    """One capture row per (process, kind of event) and per browser event, from ConnectionLog.

    In the order of the template kinds of :mod:`wsreplay.sim.virtual_driver` (``_O_*``, then ``_B_*``).
    """
    rows: list[dict[str, Any]] = []
    ack = encode_ack()

    def refused(path: str, query: str | None, user_agent: str | None) -> dict[str, Any]:
        # as the recorder writes a handshake it could not pass on (user agent and peer kept)
        row = ConnectionLog(capture_id, path, query, conn_id="-").error(
            0, REFUSED_REASON, status=REFUSED_STATUS, direction="to_peer"
        )
        row["user_agent"] = user_agent
        return row

    for life in plan.lives:
        path = f"/ws/outpost/{life.pk}/"
        log = ConnectionLog(capture_id, path, life.query(0), conn_id="-")
        rows.append(log.open(0, status=101, user_agent=life.user_agent, peer=None))
        rows.append(log.message(0, "to_server", life.hello))
        rows.append(log.message(0, "to_peer", ack))
        rows.append(log.close(0, "to_server", code=1000))
        rows.append(log.close(0, "to_server", code=1006, reason=DROP_REASON))
        rows.append(log.error(0, DROP_REASON, direction="to_server"))
        rows.append(log.close(0, "to_peer", code=1012))
        rows.append(refused(path, life.query(0), life.user_agent))
    ua = plan.browsers[0].user_agent if plan.browsers else None
    log = ConnectionLog(capture_id, "/ws/client/", conn_id="-")
    rows.append(log.open(0, status=101, user_agent=ua, peer=None))
    rows.append(log.close(0, "to_server", code=1001))
    rows.append(log.close(0, "to_peer", code=1012))
    rows.append(refused("/ws/client/", None, ua))
    for n in plan.scenario.notices:
        rows.append(log.message(0, "to_peer", encode_notice(n.message, level=n.level)))
    return {name: pa.array([r.get(name) for r in rows], type=typ) for name, typ in zip(SCHEMA.names, SCHEMA.types)}


_PER_ROW: Final = frozenset({"ts", "seq", "conn_id", "query", "peer", "capture_id"})


class CaptureColumns:
    """Everything needed to build any slice of the capture table, in time order."""

    def __init__(self, driver: VirtualDriver, start_ns: int, capture_id: str) -> None:
        r = driver.rows
        self.capture_id = capture_id
        ts = np.concatenate(r.ts) if r.ts else np.empty(0)
        # the recording host's clock (clock steps) stamps the rows
        self.ts_ns = np.round(driver.plan.capture_clock(ts) * 1e9).astype(np.int64) + start_ns
        self.kind = np.concatenate(r.kind) if r.kind else np.empty(0, dtype=np.int32)
        self.conn = np.concatenate(r.conn) if r.conn else np.empty(0, dtype=np.int32)
        self.seq = np.concatenate(r.seq) if r.seq else np.empty(0, dtype=np.int64)
        # rows were added connection by connection, each in sequence order: a stable
        # sort on time keeps that order among equal timestamps (the recorder's sealing
        # sorts by time too, so a clock step interleaves the rows as it would)
        order = np.argsort(self.ts_ns, kind="stable")
        capture_start = driver.plan.scenario.capture_start
        if capture_start > 0:
            # a capture that starts late holds only the rows from then on
            order = order[ts[order] >= capture_start]
        self.order = order
        self.templates = templates(driver.plan, capture_id)
        self.constant = {
            name: arr for name, arr in self.templates.items() if name not in _PER_ROW and arr.null_count == len(arr)
        }
        self.conn_ids = pa.array(r.conn_ids, type=pa.string())
        self.queries = pa.array(r.queries, type=pa.string())
        self.peers = pa.array(r.peers, type=pa.string())
        # the peer's address is on open rows and on refused handshakes (error rows with a status)
        event = self.templates["event"]
        with_peer = pc.or_(
            pc.equal(event, "open"), pc.and_(pc.equal(event, "error"), pc.is_valid(self.templates["status"]))
        )
        self.has_peer = np.asarray(with_peer.fill_null(False))

    def __len__(self) -> int:
        return len(self.order)

    def table(self, lo: int, hi: int, chunk_rows: int = CHUNK_ROWS) -> pa.Table:
        """Rows ``lo:hi`` (in time order) as a capture table, built *chunk_rows* at a time."""
        batches = [self._batch(self.order[a : min(a + chunk_rows, hi)]) for a in range(lo, hi, chunk_rows)]
        return pa.Table.from_batches(batches, schema=SCHEMA) if batches else SCHEMA.empty_table()

    def _batch(self, idx: np.ndarray) -> pa.RecordBatch:
        n = len(idx)
        kind = self.kind[idx]
        k = pa.array(kind)
        c = pa.array(self.conn[idx])
        # glibc's allocator reuses the freed buffers of the previous batches; the default
        # pool hands fresh pages to each batch, which makes building a segment 2-3x slower
        pool = pa.system_memory_pool()
        null = pa.scalar(None, type=pa.string())
        cols: dict[str, pa.Array] = {
            "ts": pa.array(self.ts_ns[idx], type=pa.int64()).cast(SCHEMA.field("ts").type),
            "capture_id": pa.repeat(pa.scalar(self.capture_id, type=pa.string()), n, memory_pool=pool),
            "conn_id": pc.take(self.conn_ids, c, memory_pool=pool),
            "seq": pa.array(self.seq[idx]),
            "query": pc.take(self.queries, c, memory_pool=pool),
            "peer": pc.if_else(
                pa.array(self.has_peer[kind]), pc.take(self.peers, c, memory_pool=pool), null, memory_pool=pool
            ),
        }
        arrays = []
        for name, typ in zip(SCHEMA.names, SCHEMA.types):
            if name in cols:
                arrays.append(cols[name])
            elif name in self.constant:
                arrays.append(pa.nulls(n, typ))
            else:
                arrays.append(pc.take(self.templates[name], k, memory_pool=pool))
        return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


def write_segments(cols: CaptureColumns, out: Path, segment_rows: int, pool: ThreadPoolExecutor) -> list[Future[None]]:
    """Seal the capture straight into Parquet segments on *pool*; returns the pending writes."""
    out.mkdir(parents=True, exist_ok=True)
    bounds = list(range(0, len(cols), segment_rows))

    def work(no: int) -> None:
        lo = bounds[no]
        table = cols.table(lo, min(lo + segment_rows, len(cols)))
        seal_table(table, out / f"{cols.capture_id}-{no:05d}{PARQUET_SUFFIX}")

    return [pool.submit(work, no) for no in range(len(bounds))]


def write_through_writer(cols: CaptureColumns, out: Path) -> None:
    writer = CaptureWriter(out, capture_id=cols.capture_id, autoflush=False)
    try:
        for lo in range(0, len(cols), FLUSH_ROWS):
            writer.write_table(cols.table(lo, min(lo + FLUSH_ROWS, len(cols))))
            writer.flush()
    finally:
        writer.close()
