"""The virtual-time driver: the fleet's programs played against the server the plan predicts.

:class:`VirtualDriver` runs the same per-replica programs as the real-time
fleet (:func:`wsreplay.sim.timeline.replica_program`) against a server whose
behaviour is predicted from the plan (restarts, refusals, ACK latency): no
sockets, no clock. It records the truth and, per connection, the times and
kinds of the capture rows a recorder would have written (an index into the
template rows of :func:`wsreplay.sim.virtual_capture.templates`);
:mod:`wsreplay.sim.virtual_capture` turns them into the capture table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from .plan import BrowserPlan, Life, Plan, ReplicaPlan, make_plan
from .scenario import DEFAULT_START, Scenario
from .timeline import (
    Begin,
    Connect,
    Connected,
    End,
    Held,
    Hold,
    Program,
    Sleep,
    browser_program,
    hello_schedule,
    replica_program,
)
from .truth import TruthBuilder

__all__ = ["VirtualDriver", "ConnectionRows", "drive", "REFUSED_STATUS"]

#: HTTP status of a handshake refused while authentik restarts (what a recorder in front of it answers).
REFUSED_STATUS: Final = 502

# template kinds of an outpost process / of the browsers (the order of virtual_capture.templates' rows)
_O_OPEN, _O_HELLO, _O_ACK, _O_CLOSE_EXIT, _O_CLOSE_DROP, _O_DROP_ERROR, _O_CLOSE_SERVER, _O_ERROR = range(8)
_O_KINDS: Final = 8
_B_OPEN, _B_CLOSE_EXIT, _B_CLOSE_SERVER, _B_ERROR = range(4)
_B_KINDS: Final = 4  # followed by one template per notice


@dataclass
class ConnectionRows:
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


class VirtualDriver:
    """Carries out the programs' commands against the server predicted by the plan."""

    def __init__(self, plan: Plan, start: pd.Timestamp) -> None:
        self.plan = plan
        self.sc = plan.scenario
        self.lives = plan.lives
        self.life_no = {life.instance_uuid: i for i, life in enumerate(self.lives)}
        self.truth = TruthBuilder(
            self.lives, duration=self.sc.duration, start=start, capture_start=self.sc.capture_start
        )
        self.rows = ConnectionRows()
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


def drive(scenario: Scenario) -> tuple[VirtualDriver, pd.Timestamp]:
    """Play every replica's and browser's program of *scenario*; return the driver and the start it used."""
    plan = make_plan(scenario)
    start = scenario.start if scenario.start is not None else DEFAULT_START
    driver = VirtualDriver(plan, start)
    for rp in plan.replicas:
        driver.run(replica_program(plan, rp), rp)
    for bp in plan.browsers:
        driver.run(browser_program(plan, bp), None)
    return driver, start
