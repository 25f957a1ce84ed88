"""Virtual time: a simulated fleet's capture generated directly, fast.

:func:`simulate_virtual` runs the same per-replica programs as the real-time
fleet (:func:`wsreplay.sim.timeline.replica_program`) against a server whose
behaviour is predicted from the plan (restarts, refusals, ACK latency), then
writes the capture a recorder standing in front of authentik would have
written: for each connection an ``open`` row (status 101, User-Agent, query
string, peer), the HELLOs (``to_server``) and ACKs (``to_peer``) with their
decoded columns, and a ``close`` row (1000 when the process exits, 1006 when
its network drops, 1012 when authentik restarts). A handshake refused while
authentik restarts is an ``error`` row. Row values come from
:class:`wsreplay.events.ConnectionLog` itself (one template row per process
and kind of event); only timestamps, sequence numbers, connection ids, query
strings and peers are filled in, column by column with numpy and pyarrow, in
time order. The rows are sealed straight into Parquet segments with the
store's own :func:`~wsreplay.store.segments.seal_table` (or, with
``via_writer=True``, go through :meth:`wsreplay.store.CaptureWriter.write_table`
like a live recording: same rows, about twice the time).

Timestamps are the times events reach the server: a HELLO's send time plus
any slow-network delay, an ACK's arrival plus the server's ACK latency.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..events import ConnectionLog
from ..exceptions import CaptureError
from ..protocol import encode_ack, encode_notice
from ..schema import SCHEMA
from ..store import CaptureWriter
from ..store.segments import PARQUET_SUFFIX, STREAM_SUFFIX, seal_table
from .scenario import DEFAULT_START, Scenario
from .timeline import (
    Begin,
    BrowserPlan,
    Connect,
    Connected,
    End,
    Held,
    Hold,
    Life,
    Plan,
    Program,
    ReplicaPlan,
    Sleep,
    browser_program,
    hello_schedule,
    make_plan,
    replica_program,
)
from .truth import TRUTH_DIR, Truth, TruthBuilder

__all__ = ["simulate_virtual", "virtual_table", "REFUSED_STATUS", "CHUNK_ROWS", "SEGMENT_ROWS"]

#: HTTP status of a handshake refused while authentik restarts (what a recorder in front of it answers).
REFUSED_STATUS: Final = 502
#: Rows built per record batch (small batches stay in the allocator's cache).
CHUNK_ROWS: Final = 1 << 16
#: Rows per Parquet segment written directly.
SEGMENT_ROWS: Final = 1 << 21
#: Rows handed to the capture writer per flush (``via_writer=True``).
FLUSH_ROWS: Final = 1 << 20

# template kinds of an outpost process / of the browsers
_O_OPEN, _O_HELLO, _O_ACK, _O_CLOSE_EXIT, _O_CLOSE_DROP, _O_DROP_ERROR, _O_CLOSE_SERVER, _O_ERROR = range(8)
_O_KINDS: Final = 8
_B_OPEN, _B_CLOSE_EXIT, _B_CLOSE_SERVER, _B_ERROR = range(4)
_B_KINDS: Final = 4  # followed by one template per notice
#: What the recorder writes when the peer's TCP connection dies without a close frame.
DROP_REASON: Final = "peer closed the connection without a close frame"
#: What the recorder writes when it cannot reach a restarting authentik.
REFUSED_REASON: Final = "upstream unreachable: connection refused"


@dataclass
class _Rows:
    """Capture rows accumulated per connection, in sequence order (numpy pieces)."""

    ts: list[np.ndarray] = field(default_factory=list)
    kind: list[np.ndarray] = field(default_factory=list)  # template index
    conn: list[np.ndarray] = field(default_factory=list)
    seq: list[np.ndarray] = field(default_factory=list)
    conn_ids: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)

    def add(self, ts: np.ndarray, kind: np.ndarray, query: str, peer: str, conn_id: str) -> None:
        n = len(self.conn_ids)
        self.conn_ids.append(conn_id)
        self.queries.append(query)
        self.peers.append(peer)
        self.ts.append(ts)
        self.kind.append(kind.astype(np.int32, copy=False))
        self.conn.append(np.full(len(ts), n, dtype=np.int32))
        self.seq.append(np.arange(len(ts), dtype=np.int64))


class _VirtualDriver:
    """Carries out the programs' commands against the server predicted by the plan."""

    def __init__(self, plan: Plan, start: pd.Timestamp) -> None:
        self.plan = plan
        self.sc = plan.scenario
        self.lives = plan.lives
        self.life_no = {life.instance_uuid: i for i, life in enumerate(self.lives)}
        self.truth = TruthBuilder(
            self.lives, duration=self.sc.duration, start=start, capture_start=self.sc.capture_start
        )
        self.rows = _Rows()
        self.rng = np.random.default_rng([self.sc.seed, 5])
        self.n_lives = len(self.lives)

    # ------------------------------------------------------------ helpers

    def _conn_id(self) -> str:
        return self.rng.bytes(16).hex()

    def _peer(self, life: Life | None, browser: BrowserPlan | None) -> str:
        port = int(self.rng.integers(32768, 61000))
        if life is not None:
            return f"10.{1 + life.outpost // 250 % 250}.{life.outpost % 250}.{10 + life.replica}:{port}"
        assert browser is not None
        return f"192.168.{browser.index // 250 % 250}.{10 + browser.index % 250}:{port}"

    def _tmpl(self, life: Life | None, kind: int) -> int:
        if life is not None:
            return self.life_no[life.instance_uuid] * _O_KINDS + kind
        return self.n_lives * _O_KINDS + kind

    # ------------------------------------------------------------ running

    def run(self, program: Program, rp: ReplicaPlan | None) -> None:
        now = 0.0
        value: Any = None
        while True:
            try:
                cmd = program.send(value)
            except StopIteration:
                return
            if isinstance(cmd, Sleep):
                now = max(now, cmd.until)
                value = now
            elif isinstance(cmd, Begin):
                self.truth.begin(cmd.life, now)
                value = now
            elif isinstance(cmd, End):
                self.truth.end(cmd.life, now)
                value = now
            elif isinstance(cmd, Connect):
                value = self._connect(cmd)
            elif isinstance(cmd, Hold):
                held = self._hold_outpost(cmd, rp) if cmd.life is not None else self._hold_browser(cmd)
                now = held.at
                value = held
            else:  # pragma: no cover - the programs yield nothing else
                raise TypeError(f"unknown command {cmd!r}")

    def _connect(self, cmd: Connect) -> Connected:
        browser = cmd.browser.index if cmd.browser is not None else None
        if cmd.blocked:
            self.truth.connection(life=cmd.life, attempt=cmd.attempt, at=cmd.at, ok=False, browser=browser)
            return Connected(False, cmd.at)
        if self.plan.server_refuses(cmd.at):
            self.truth.connection(
                life=cmd.life, attempt=cmd.attempt, at=cmd.at, ok=False, status=REFUSED_STATUS, browser=browser
            )
            kind = _O_ERROR if cmd.life is not None else _B_ERROR
            query = cmd.life.query(cmd.attempt) if cmd.life is not None else ""
            self.rows.add(
                np.array([cmd.at]),
                np.array([self._tmpl(cmd.life, kind)]),
                query,
                self._peer(cmd.life, cmd.browser),
                self._conn_id(),
            )
            return Connected(False, cmd.at, REFUSED_STATUS)
        return Connected(True, cmd.at)

    def _hold_outpost(self, cmd: Hold, rp: ReplicaPlan | None) -> Held:
        assert cmd.life is not None and rp is not None
        life = cmd.life
        rec = self.truth.connection(life=life, attempt=cmd.attempt, at=cmd.opened, ok=True)
        srv = self.plan.next_server_close(cmd.opened, cmd.until)
        end = srv.start if srv is not None else cmd.until
        sent = hello_schedule(cmd.opened, end, cmd.gaps, cmd.hangs, cmd.cadence)
        arrived = sent + rp.delays(sent)
        ok = arrived < end
        ack_srv = arrived + self.plan.ack_latency(arrived)
        ack_ok = ok & (ack_srv < end)
        dropped, doubled, lag = self.plan.ack_fault(np.where(ok, arrived, np.inf))
        ack_ok &= ~dropped
        dup_srv = ack_srv[ack_ok & doubled] + lag
        dup_srv = dup_srv[dup_srv < end]
        ack_recv = ack_srv + rp.delays(ack_srv)
        recv_ok = ack_ok & (ack_recv < end)
        self.truth.hellos(life, sent, np.where(ok, arrived, np.nan))
        self.truth.acks(life, sent[recv_ok], ack_recv[recv_ok])
        for h in cmd.hangs:
            if cmd.opened <= h.start < end:
                self.truth.down(life, h.start, "silent")
        if srv is not None:
            self.truth.down(life, end, "server_restart")
            close_kind, held = _O_CLOSE_SERVER, Held(end, True, 1012)
            rec.update(close_code=1012, closed_by="server")
        elif cmd.abort:
            if not cmd.crash:  # a killed process exits: that is no outage of the instance
                self.truth.down(life, end, "disconnect")
            close_kind, held = _O_CLOSE_DROP, Held(end, False, 1006)
            rec.update(close_code=1006, closed_by="peer")
        else:
            close_kind, held = _O_CLOSE_EXIT, Held(end, False, 1000)
            rec.update(close_code=1000, closed_by="peer")
        rec["closed"] = end
        # the connection's rows: open, messages in arrival order, close
        msg_ts = np.concatenate([arrived[ok], ack_srv[ack_ok], dup_srv])
        msg_kind = np.concatenate(
            [
                np.full(int(ok.sum()), _O_HELLO, dtype=np.int32),
                np.full(int(ack_ok.sum()) + len(dup_srv), _O_ACK, dtype=np.int32),
            ]
        )
        order = np.argsort(msg_ts, kind="stable")
        base = self._tmpl(life, 0)
        tail = [close_kind, _O_DROP_ERROR] if close_kind == _O_CLOSE_DROP else [close_kind]
        ts = np.concatenate([[cmd.opened], msg_ts[order], [end] * len(tail)])
        kind = np.concatenate([[_O_OPEN], msg_kind[order], tail]) + base
        self.rows.add(ts, kind, life.query(cmd.attempt), self._peer(life, None), self._conn_id())
        return held

    def _hold_browser(self, cmd: Hold) -> Held:
        assert cmd.browser is not None
        b = cmd.browser.index
        rec = self.truth.connection(life=None, attempt=cmd.attempt, at=cmd.opened, ok=True, browser=b)
        srv = self.plan.next_server_close(cmd.opened, cmd.until)
        end = srv.start if srv is not None else cmd.until
        times, kinds = [cmd.opened], [_B_OPEN]
        for k, n in enumerate(self.sc.notices):
            if cmd.opened <= n.at < end:
                times.append(n.at)
                kinds.append(_B_KINDS + k)
                self.truth.notice(b, n.at, n.level, n.message)
        if srv is not None:
            kinds.append(_B_CLOSE_SERVER)
            held = Held(end, True, 1012)
            rec.update(close_code=1012, closed_by="server")
        else:
            kinds.append(_B_CLOSE_EXIT)
            held = Held(end, False, 1001)
            rec.update(close_code=1001, closed_by="peer")
        times.append(end)
        rec["closed"] = end
        base = self._tmpl(None, 0)
        self.rows.add(np.array(times), np.array(kinds) + base, "", self._peer(None, cmd.browser), self._conn_id())
        return held


def _templates(plan: Plan, capture_id: str) -> dict[str, pa.Array]:
    """One capture row per (process, kind of event) and per browser event, from ConnectionLog."""
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


class _Columns:
    """Everything needed to build any slice of the capture table, in time order."""

    def __init__(self, driver: _VirtualDriver, start_ns: int, capture_id: str) -> None:
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
        self.templates = _templates(driver.plan, capture_id)
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


def _drive(scenario: Scenario) -> tuple[_VirtualDriver, pd.Timestamp]:
    plan = make_plan(scenario)
    start = scenario.start if scenario.start is not None else DEFAULT_START
    driver = _VirtualDriver(plan, start)
    for rp in plan.replicas:
        driver.run(replica_program(plan, rp), rp)
    for bp in plan.browsers:
        driver.run(browser_program(plan, bp), None)
    return driver, start


def _write_segments(cols: _Columns, out: Path, segment_rows: int, pool: ThreadPoolExecutor) -> list[Future[None]]:
    """Seal the capture straight into Parquet segments on *pool*; returns the pending writes."""
    out.mkdir(parents=True, exist_ok=True)
    bounds = list(range(0, len(cols), segment_rows))

    def work(no: int) -> None:
        lo = bounds[no]
        table = cols.table(lo, min(lo + segment_rows, len(cols)))
        seal_table(table, out / f"{cols.capture_id}-{no:05d}{PARQUET_SUFFIX}")

    return [pool.submit(work, no) for no in range(len(bounds))]


def _write_through_writer(cols: _Columns, out: Path) -> None:
    writer = CaptureWriter(out, capture_id=cols.capture_id, autoflush=False)
    try:
        for lo in range(0, len(cols), FLUSH_ROWS):
            writer.write_table(cols.table(lo, min(lo + FLUSH_ROWS, len(cols))))
            writer.flush()
    finally:
        writer.close()


def simulate_virtual(
    scenario: Scenario,
    out: str | os.PathLike[str] | None = None,
    *,
    save_truth: bool = True,
    via_writer: bool = False,
    segment_rows: int = SEGMENT_ROWS,
    workers: int = 2,
) -> Truth:
    """Simulate *scenario* in virtual time; write its capture (and truth) into *out*.

    Parameters
    ----------
    scenario : Scenario
        The fleet and its faults. Its ``start`` (default :data:`DEFAULT_START`)
        anchors the timestamps; the same scenario always gives the same
        capture rows (capture id, connection ids, instance uuids and jitter
        all come from ``scenario.seed``).
    out : path, optional
        Capture directory (must not hold a capture yet). The truth goes to
        ``<out>/truth/`` unless ``save_truth=False``. Without *out* only the
        truth is computed.
    via_writer : bool
        ``False`` (default): the rows, already in time order, are sealed
        straight into Parquet segments with the store's own
        :func:`~wsreplay.store.segments.seal_table`, *workers* segments at a
        time. ``True``: they go through :meth:`CaptureWriter.write_table`
        like a live recording (Arrow stream first, sealed on close), which
        costs about three times as long and produces the same rows.
    segment_rows : int
        Rows per Parquet segment on the direct path.

    Returns
    -------
    Truth

    Examples
    --------
    >>> from wsreplay.sim import Scenario
    >>> truth = simulate_virtual(Scenario.generate(outposts=2, duration=30, interval=1, seed=3, faults=False))
    >>> int(truth.hello_counts().sum()) > 50
    True
    """
    driver, start = _drive(scenario)
    capture_id = driver.plan.capture_id
    if out is None:
        return driver.truth.build(clock="virtual", scenario=scenario.to_dict())
    target = Path(out)
    if target.exists() and any(p.suffix in (PARQUET_SUFFIX, STREAM_SUFFIX) for p in target.iterdir()):
        raise CaptureError(f"{target} already holds a capture; simulate into a new directory")
    cols = _Columns(driver, start.value, capture_id)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        # the segments are written on the pool while this thread builds (and saves) the truth
        pending = [] if via_writer else _write_segments(cols, target, segment_rows, pool)
        if via_writer:
            _write_through_writer(cols, target)
        truth = driver.truth.build(clock="virtual", scenario=scenario.to_dict(), capture_id=capture_id)
        if save_truth:
            truth.save(target / TRUTH_DIR)
        for future in pending:
            future.result()
    return truth


def virtual_table(scenario: Scenario) -> tuple[pa.Table, Truth]:
    """The capture of *scenario* as one in-memory Arrow table (time order), and its truth.

    Meant for small scenarios in tests and notebooks; see :func:`simulate_virtual`.
    """
    driver, start = _drive(scenario)
    cols = _Columns(driver, start.value, driver.plan.capture_id)
    table = cols.table(0, len(cols)).combine_chunks()
    truth = driver.truth.build(clock="virtual", scenario=scenario.to_dict(), capture_id=driver.plan.capture_id)
    return table, truth
