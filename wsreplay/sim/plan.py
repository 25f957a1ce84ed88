"""The plan of a simulated run: a scenario expanded into processes, fault windows and server events.

Nothing here does I/O or reads a clock. :func:`make_plan` expands a
:class:`~wsreplay.sim.scenario.Scenario` into, per outpost replica, its
processes (:class:`Life`: instance uuid, version, start, end) and its fault
windows (:class:`Window`), and globally the server's restarts and latency
spikes (:class:`Plan`). What each process does with its plan is
:mod:`wsreplay.sim.timeline`.

Times are float seconds from the start of the run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Final

import numpy as np

from ..protocol import encode_hello, hello_args
from .scenario import Fault, Scenario
from .scenario_gen import next_version, random_uuid

__all__ = [
    "GOLANG_VERSION",
    "Life",
    "Window",
    "ReplicaPlan",
    "BrowserPlan",
    "Plan",
    "make_plan",
    "covering",
]

#: ``golangVersion`` the simulated Go outposts report.
GOLANG_VERSION: Final = "go1.21.3"


@dataclass(frozen=True)
class Life:
    """One outpost process: from start to exit it keeps one instance uuid."""

    outpost: int
    replica: int
    index: int
    pk: str
    instance_uuid: str
    version: str
    hostname: str
    start: float
    end: float
    end_cause: str  # "restart", "upgrade", "crash" or "end" (the run ended)

    @property
    def build_hash(self) -> str:
        """The build hash Go outposts of this version report."""
        return hashlib.sha1(f"authentik-{self.version}".encode()).hexdigest()

    @property
    def user_agent(self) -> str:
        """``goauthentik.io/outpost/<version>``, the Go outposts' User-Agent."""
        return f"goauthentik.io/outpost/{self.version}"

    @cached_property
    def hello(self) -> str:
        """The HELLO frame this process sends (the same every time: its args do not change)."""
        args = hello_args(
            uuid=self.instance_uuid,
            version=self.version,
            build_hash=self.build_hash,
            hostname=self.hostname,
            golang_version=GOLANG_VERSION,
        )
        return encode_hello(args)

    def query(self, attempt: int) -> str:
        """The handshake's query string for connection attempt *attempt*."""
        return f"instance_uuid={self.instance_uuid}&attempt={attempt}"


@dataclass(frozen=True)
class Window:
    """A time window ``[start, end)`` with a cause and, for slow networks and spikes, a delay."""

    start: float
    end: float
    cause: str
    delay: float = 0.0

    def covers(self, t: float) -> bool:
        """True if ``start <= t < end``."""
        return self.start <= t < self.end


def covering(windows: Sequence[Window], t: float) -> Window | None:
    for w in windows:
        if w.covers(t):
            return w
    return None


@dataclass(frozen=True)
class ReplicaPlan:
    """The processes and fault windows of one outpost replica."""

    outpost: int
    replica: int
    pk: str
    lives: tuple[Life, ...]
    drops: tuple[Window, ...]  # disconnect: socket dies at start, network down until end
    hangs: tuple[Window, ...]  # silent: no HELLO in [start, end)
    slow: tuple[Window, ...]  # slow_network: frames take `delay` extra seconds each way
    cadence: tuple[Window, ...] = ()  # interval_change: HELLO gaps scaled by `delay` (new / usual interval)

    def network_down(self, t: float) -> bool:
        """True if the replica's network is down at *t* (connection attempts fail)."""
        return covering(self.drops, t) is not None

    def awake_at(self, t: float) -> float:
        """*t*, or the end of the hang covering it: when a hung process can act again."""
        w = covering(self.hangs, t)
        while w is not None:
            t = w.end
            w = covering(self.hangs, t)
        return t

    def next_drop(self, after: float, before: float) -> Window | None:
        """The first network drop starting in ``(after, before)``."""
        for w in self.drops:
            if after < w.start < before:
                return w
        return None

    def delay_at(self, t: float) -> float:
        """Extra one-way network delay at *t*."""
        w = covering(self.slow, t)
        return w.delay if w is not None else 0.0

    def delays(self, t: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`delay_at`."""
        out = np.zeros(len(t))
        for w in self.slow:
            out[(t >= w.start) & (t < w.end)] = w.delay
        return out


@dataclass(frozen=True)
class BrowserPlan:
    """One browser holding ``/ws/client/``."""

    index: int
    start: float
    user_agent: str


@dataclass(frozen=True)
class Plan:
    """A scenario expanded into processes and windows (see :func:`make_plan`)."""

    scenario: Scenario
    replicas: tuple[ReplicaPlan, ...]
    browsers: tuple[BrowserPlan, ...]
    server_down: tuple[Window, ...]  # server_restart: connections closed at start, refused until end
    spikes: tuple[Window, ...]  # latency_spike: ACKs `delay` later
    capture_id: str
    ack_faults: tuple[Window, ...] = ()  # ack_drop / ack_dup (cause), every third frame of a connection
    clock_steps: tuple[Window, ...] = ()  # clock_step: capture timestamps from `start` on are `delay` s early

    @property
    def lives(self) -> list[Life]:
        """Every process of the fleet, replica by replica."""
        return [life for rp in self.replicas for life in rp.lives]

    def server_refuses(self, t: float) -> bool:
        """True if authentik refuses connections at *t* (restarting)."""
        return covering(self.server_down, t) is not None

    def next_server_close(self, after: float, before: float) -> Window | None:
        """The first server restart in ``(after, before)`` (it closes open connections)."""
        for w in self.server_down:
            if after < w.start < before:
                return w
        return None

    def ack_latency(self, t: np.ndarray) -> np.ndarray:
        """Seconds authentik takes to ACK a frame that arrived at *t* (vectorised)."""
        out = np.full(len(t), self.scenario.ack_latency)
        for w in self.spikes:
            out[(t >= w.start) & (t < w.end)] += w.delay
        return out

    def ack_fault(self, arrived: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Which of a connection's frames (arrival times, in order) get no ACK, which get two, and the lag.

        Every third frame (the 2nd, 5th, ...) arriving inside an ``ack_drop``
        / ``ack_dup`` window.
        """
        drop = np.zeros(len(arrived), dtype=bool)
        dup = np.zeros(len(arrived), dtype=bool)
        lag = 0.001
        if not self.ack_faults or not len(arrived):
            return drop, dup, lag
        third = (np.arange(len(arrived)) % 3) == 1
        for w in self.ack_faults:
            inside = third & (arrived >= w.start) & (arrived < w.end)
            if w.cause == "ack_drop":
                drop |= inside
            else:
                dup |= inside
                lag = w.delay
        return drop, dup & ~drop, lag

    def capture_clock(self, t: np.ndarray) -> np.ndarray:
        """Times (seconds) as the recording host's clock stamped them (``clock_step`` faults)."""
        out = np.asarray(t, dtype=float)
        for w in self.clock_steps:
            out = np.where(np.asarray(t) >= w.start, out - w.delay, out)
        return out

    def gaps(self, life: Life, hold_no: int, seconds: float, hangs: int = 0, fastest: float = 1.0) -> np.ndarray:
        """Jittered gaps between HELLOs for connection *hold_no* of *life*.

        Enough for *seconds* of connection (*fastest*: the smallest cadence
        scale it may run at); drawn from a generator seeded by (seed, outpost,
        replica, life, connection) so that both clocks get the same gaps for
        the same connection whatever happened elsewhere.
        """
        sc = self.scenario
        rng = np.random.default_rng([sc.seed, 2, life.outpost, life.replica, life.index, hold_no])
        n = int(max(seconds, 0.0) / (sc.interval * min(fastest, 1.0) * (1 - sc.jitter))) + 2 + hangs
        return sc.interval * (1.0 + sc.jitter * rng.uniform(-1.0, 1.0, n))


def make_plan(scenario: Scenario) -> Plan:
    """Expand *scenario* into processes, fault windows and server events.

    Every replica's first process starts at a random moment of the first
    interval; a ``restart``/``upgrade``/``crash`` fault ends a process at ``at`` and starts
    the next one (new instance uuid, maybe a new version) at ``at + duration``.
    """
    sc = scenario
    by_replica: dict[tuple[str, int], list[Fault]] = {}
    server_down: list[Window] = []
    spikes: list[Window] = []
    ack_faults: list[Window] = []
    clock_steps: list[Window] = []
    for f in sc.faults:
        if f.kind == "server_restart":
            server_down.append(Window(f.at, f.at + f.duration, "server_restart"))
        elif f.kind == "latency_spike":
            spikes.append(Window(f.at, f.at + f.duration, "latency_spike", sc.fault_delay(f)))
        elif f.kind in ("ack_drop", "ack_dup"):
            ack_faults.append(Window(f.at, f.at + f.duration, f.kind, sc.fault_delay(f)))
        elif f.kind == "clock_step":
            clock_steps.append(Window(f.at, np.inf, "clock_step", sc.fault_delay(f)))
        else:
            assert f.outpost is not None
            by_replica.setdefault((f.outpost, f.replica), []).append(f)
    replicas = []
    for oi, spec in enumerate(sc.outposts):
        for r in range(spec.replicas):
            rng = np.random.default_rng([sc.seed, 1, oi, r])
            faults = by_replica.get((spec.pk, r), [])
            lives: list[Life] = []
            start = float(rng.uniform(0.0, min(sc.interval, sc.duration / 4)))
            version = spec.version
            drops, hangs, slow, cadence = [], [], [], []
            for f in faults:
                if f.kind == "disconnect":
                    drops.append(Window(f.at, f.at + f.duration, "disconnect"))
                elif f.kind == "silent":
                    hangs.append(Window(f.at, f.at + f.duration, "silent"))
                elif f.kind == "slow_network":
                    slow.append(Window(f.at, f.at + f.duration, "slow_network", sc.fault_delay(f)))
                elif f.kind == "interval_change":
                    scale = sc.fault_delay(f) / sc.interval
                    cadence.append(Window(f.at, f.at + f.duration, "interval_change", scale))
            for f in faults:
                if f.kind not in ("restart", "upgrade", "crash") or f.at < start or f.at >= sc.duration:
                    continue
                lives.append(_life(rng, spec.pk, spec.label, oi, r, len(lives), version, start, f.at, f.kind))
                if f.kind == "upgrade":
                    version = f.version or next_version(version)
                start = f.at + f.duration
            if start < sc.duration:
                lives.append(_life(rng, spec.pk, spec.label, oi, r, len(lives), version, start, sc.duration, "end"))
            replicas.append(
                ReplicaPlan(oi, r, spec.pk, tuple(lives), tuple(drops), tuple(hangs), tuple(slow), tuple(cadence))
            )
    brng = np.random.default_rng([sc.seed, 3])
    browsers = tuple(
        BrowserPlan(
            i,
            float(brng.uniform(0.0, min(sc.interval, sc.duration / 4))),
            "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        )
        for i in range(sc.browsers)
    )
    capture_id = np.random.default_rng([sc.seed, 4]).bytes(16).hex()
    return Plan(
        sc,
        tuple(replicas),
        browsers,
        tuple(server_down),
        tuple(spikes),
        capture_id,
        tuple(ack_faults),
        tuple(clock_steps),
    )


def _life(
    rng: np.random.Generator,
    pk: str,
    label: str,
    oi: int,
    r: int,
    index: int,
    version: str,
    start: float,
    end: float,
    cause: str,
) -> Life:
    suffix = rng.bytes(4).hex()[:5]
    return Life(oi, r, index, pk, random_uuid(rng), version, f"ak-outpost-{label}-{suffix}", start, end, cause)
