"""What each simulated process does, written once for both clocks: backoff, HELLO times, programs.

Nothing here does I/O or reads a clock. The plan
(:func:`~wsreplay.sim.plan.make_plan`: processes, fault windows, server
events) is :mod:`wsreplay.sim.plan`. The behaviour of one Go outpost replica
is written once, as the generator :func:`replica_program`: it yields commands
(:class:`Sleep`, :class:`Begin`, :class:`Connect`, :class:`Hold`,
:class:`End`) and receives what happened. The real-time driver
(:mod:`wsreplay.sim.fleet`) carries the commands out over sockets; the
virtual-time driver (:mod:`wsreplay.sim.virtual`) predicts their outcome from
the plan. Both get HELLO send times from :func:`hello_schedule` and the jitter
of each connection from :meth:`Plan.gaps`, so the two clocks cannot drift
apart. Browsers follow :func:`browser_program` the same way.

Times are float seconds from the start of the run.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from .plan import BrowserPlan, Life, Plan, ReplicaPlan, Window, covering

__all__ = [
    "BACKOFF_BASE_S",
    "BACKOFF_CAP_S",
    "BROWSER_BACKOFF_S",
    "backoff_delay",
    "browser_backoff",
    "hello_schedule",
    "Sleep",
    "Begin",
    "Connect",
    "Connected",
    "Hold",
    "Held",
    "End",
    "replica_program",
    "browser_program",
    "Command",
]

#: Go outposts wait 1 s before the first reconnect attempt, doubling each time ...
BACKOFF_BASE_S: Final = 1.0
#: ... up to 5 minutes (both scaled by ``interval / 10`` in a scenario).
BACKOFF_CAP_S: Final = 300.0
#: The web UI retries after 200 ms, doubling, without a cap.
BROWSER_BACKOFF_S: Final = 0.2


def backoff_delay(attempt: int, scale: float = 1.0) -> float:
    """Seconds a Go outpost waits before reconnect attempt *attempt* (1, 2, ...).

    >>> [backoff_delay(n) for n in (1, 2, 3, 10)]
    [1.0, 2.0, 4.0, 300.0]
    """
    return min(BACKOFF_BASE_S * 2.0 ** max(attempt - 1, 0), BACKOFF_CAP_S) * scale


def browser_backoff(attempt: int, scale: float = 1.0) -> float:
    """Seconds the web UI waits before reconnect attempt *attempt* (200 ms doubling, no cap)."""
    return BROWSER_BACKOFF_S * 2.0 ** min(max(attempt - 1, 0), 30) * min(scale, 1.0)


def hello_schedule(
    opened: float,
    until: float,
    gaps: np.ndarray,
    hangs: Sequence[Window] = (),
    cadence: Sequence[Window] = (),
) -> np.ndarray:
    """Send times of the HELLOs of one connection.

    A HELLO right after connecting, then one after each gap, none while the
    process hangs; when it wakes up it sends one at once and the cadence goes
    on from there. Inside a *cadence* window (``interval_change``) each gap
    is scaled by the window's ``delay``. Only times before *until* are kept.

    >>> hello_schedule(0.0, 3.5, np.array([1.0, 1.0, 1.0, 1.0]))
    array([0., 1., 2., 3.])
    >>> hello_schedule(0.0, 5.5, np.ones(6), cadence=[Window(1.0, 4.0, "interval_change", 2.0)])
    array([0., 1., 3., 5.])
    """
    cadence = [w for w in cadence if w.end > opened and w.start < until]
    pieces = []
    t = opened
    used = 0
    for h in sorted(hangs, key=lambda w: w.start):
        if h.end <= t or h.start >= until:
            continue
        if h.start > t:
            piece = _cadence(t, min(h.start, until), gaps[used:], cadence)
            pieces.append(piece)
            used += len(piece)
        t = max(t, h.end)
        if t >= until:
            break
    if t < until:
        pieces.append(_cadence(t, until, gaps[used:], cadence))
    return np.concatenate(pieces) if pieces else np.empty(0)


def _cadence(t0: float, stop: float, gaps: np.ndarray, cadence: Sequence[Window] = ()) -> np.ndarray:
    if any(w.end > t0 and w.start < stop for w in cadence):
        # the scale depends on where each gap starts: one step per HELLO, only on such connections
        out = [t0]
        t = t0
        for g in gaps.tolist():
            w = covering(cadence, t)
            t += g * (w.delay if w is not None else 1.0)
            if t >= stop:
                break
            out.append(t)
        return np.asarray(out)
    times = np.empty(len(gaps) + 1)
    times[0] = t0
    np.cumsum(gaps, out=times[1:])
    times[1:] += t0
    return times[: int(np.searchsorted(times, stop, side="left"))]


# ------------------------------------------------------------------ the programs


@dataclass(frozen=True)
class Sleep:
    """Wait until *until*; the driver sends back the time it woke up."""

    until: float


@dataclass(frozen=True)
class Begin:
    """Process *life* starts now (driver sends back the time)."""

    life: Life


@dataclass(frozen=True)
class Connect:
    """Open the WebSocket now; ``blocked``: the replica's network is down, the attempt fails locally.

    The driver sends back :class:`Connected`.
    """

    life: Life | None
    attempt: int
    at: float
    blocked: bool
    browser: BrowserPlan | None = None


@dataclass(frozen=True)
class Connected:
    """Outcome of a :class:`Connect`: ``ok`` and when; ``status`` of a refused handshake."""

    ok: bool
    at: float
    status: int | None = None


@dataclass(frozen=True)
class Hold:
    """Keep the connection: HELLOs at :func:`hello_schedule` times, until *until* or a server close.

    At *until* the connection is aborted without a close frame if ``abort``
    (network drop, or the process is killed), else closed cleanly with 1000
    (process exit). The driver sends back :class:`Held`. For browsers
    ``life`` is ``None``.
    """

    life: Life | None
    attempt: int
    opened: float
    until: float
    abort: bool
    gaps: np.ndarray
    hangs: tuple[Window, ...] = ()
    browser: BrowserPlan | None = None
    cadence: tuple[Window, ...] = ()

    @property
    def crash(self) -> bool:
        """The hold ends because the process is killed (not a network drop)."""
        return self.life is not None and self.abort and self.until >= self.life.end and self.life.end_cause == "crash"


@dataclass(frozen=True)
class Held:
    """How a :class:`Hold` ended: when, and whether the server closed it (``code``)."""

    at: float
    by_server: bool
    code: int | None = None


@dataclass(frozen=True)
class End:
    """Process *life* exits now (its connection, if any, was closed by the :class:`Hold`)."""

    life: Life


Command = Sleep | Begin | Connect | Hold | End
Program = Generator[Command, Any, None]


def replica_program(plan: Plan, rp: ReplicaPlan) -> Program:
    """What one Go outpost replica does, process after process.

    Each process connects at start (``attempt=0``), holds the connection
    (HELLO at once, then every interval) until its network drops, the server
    closes it, or the process exits; after a drop or a server close it
    retries after :func:`backoff_delay` (1 s doubling, capped), each failure
    doubling the wait. A hung process does nothing until it wakes. A process
    that is killed (``crash``) aborts its connection like a network drop and
    exits.
    """
    sc = plan.scenario
    for life in rp.lives:
        t = yield Sleep(life.start)
        t = yield Begin(life)
        attempt = 0
        hold_no = 0
        while True:
            t = rp.awake_at(t)
            if t >= life.end:
                break
            t = yield Sleep(t)
            res: Connected = yield Connect(life, attempt, t, blocked=rp.network_down(t))
            t = res.at
            if not res.ok:
                attempt += 1
                t += backoff_delay(attempt, sc.scale)
                continue
            drop = rp.next_drop(t, life.end)
            until = drop.start if drop is not None else life.end
            hangs = tuple(h for h in rp.hangs if h.end > t and h.start < until)
            cadence = tuple(w for w in rp.cadence if w.end > t and w.start < until)
            fastest = min((w.delay for w in cadence), default=1.0)
            gaps = plan.gaps(life, hold_no, until - t, len(hangs), fastest)
            hold_no += 1
            killed = drop is None and life.end_cause == "crash"
            held: Held = yield Hold(life, attempt, t, until, drop is not None or killed, gaps, hangs, cadence=cadence)
            t = held.at
            if not held.by_server and drop is None:
                break  # the process exits
            attempt = 1
            t += backoff_delay(attempt, sc.scale)
        t = yield Sleep(max(t, life.end))
        yield End(life)


def browser_program(plan: Plan, bp: BrowserPlan) -> Program:
    """A browser tab on ``/ws/client/`` for the whole run, reconnecting like the web UI."""
    sc = plan.scenario
    t = yield Sleep(bp.start)
    attempt = 0
    while t < sc.duration:
        t = yield Sleep(t)
        res: Connected = yield Connect(None, attempt, t, blocked=False, browser=bp)
        t = res.at
        if not res.ok:
            attempt += 1
            t += browser_backoff(attempt, sc.scale)
            continue
        held: Held = yield Hold(None, attempt, t, sc.duration, False, np.empty(0), browser=bp)
        t = held.at
        if not held.by_server:
            break
        attempt = 1
        t += browser_backoff(attempt, sc.scale)
