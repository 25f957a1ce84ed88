"""What a simulated fleet is made of: outposts, replicas, browsers and scripted faults.

A :class:`Scenario` is a plain description (no I/O, no clock): which outposts
exist, how many replicas (processes) each runs, which version they start with,
the HELLO interval and its jitter, the server's ACK latency, and a list of
:class:`Fault` at given times (seconds from the start of the run). The same
scenario drives both clocks: :func:`wsreplay.sim.run_fleet` (real time, over
sockets) and :func:`wsreplay.sim.simulate_virtual` (virtual time, a capture
generated directly). :meth:`Scenario.generate` builds a random but
deterministic one from a seed.

Fault kinds
-----------
``disconnect``
    The replica's network drops at ``at``: its socket dies without a close
    frame (the server sees 1006) and connection attempts fail until
    ``at + duration``; the outpost retries with exponential backoff.
``silent``
    The process hangs from ``at`` for ``duration``: the socket stays open but
    no HELLO is sent; HELLOs resume when it wakes up.
``restart``
    The process exits at ``at`` (close 1000) and a new process, with a new
    instance uuid, starts ``duration`` seconds later.
``upgrade``
    A restart whose new process runs ``version`` (the next release when not given).
``slow_network``
    From ``at`` for ``duration``, each frame of the replica takes ``delay``
    extra seconds each way.
``server_restart``
    authentik restarts at ``at``: every connection is closed with 1012 and new
    ones are refused for ``duration`` seconds (``outpost`` is ignored).
``latency_spike``
    authentik answers with ``delay`` extra seconds of ACK latency from ``at``
    for ``duration`` (``outpost`` is ignored).
``crash``
    The process is killed at ``at`` (OOM kill, node loss): its socket dies
    without a close frame (a TCP reset; the recorder sees 1006) and a new
    process, with a new instance uuid, starts ``duration`` seconds later.
``interval_change``
    From ``at`` for ``duration`` the replica sends its HELLOs every ``delay``
    seconds (default: twice the interval) instead of every ``interval``
    (authentik changed the outpost's refresh interval).
``ack_drop`` / ``ack_dup``
    A misbehaving authentik, from ``at`` for ``duration``: every third frame
    of each connection gets no ACK (``ack_drop``) or two (``ack_dup``; the
    second ``delay`` seconds after the first, default 1 ms). ``outpost`` is
    ignored.
``clock_step``
    The recording host's clock steps back by ``delay`` seconds (default 2)
    at ``at``: every capture timestamp from then on is ``delay`` seconds
    early. Only the capture's clock moves (the truth stays on the true
    clock), and only in virtual time: a real-time run cannot step the
    recorder's clock (:func:`~wsreplay.sim.run_fleet` ignores it).

A scenario's ``capture_start`` (seconds) starts the capture late, possibly in
the middle of an outage: in virtual time the capture holds only the rows from
then on (connections already open are seen from that moment, as a capture
that starts while they run), and the truth's window starts there too.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

import pandas as pd

from ..exceptions import ConfigurationError
from ..protocol import HELLO_INTERVAL_S

__all__ = [
    "FAULT_KINDS",
    "SERVER_FAULTS",
    "DEFAULT_START",
    "OutpostSpec",
    "Fault",
    "Notice",
    "Scenario",
    "token_for",
]

#: Every fault kind a scenario may script.
FAULT_KINDS: Final = (
    "disconnect",
    "silent",
    "restart",
    "upgrade",
    "slow_network",
    "server_restart",
    "latency_spike",
    "crash",
    "interval_change",
    "ack_drop",
    "ack_dup",
    "clock_step",
)
#: Faults that happen to authentik itself (or the recording host) rather than to one outpost replica.
SERVER_FAULTS: Final = frozenset({"server_restart", "latency_spike", "ack_drop", "ack_dup", "clock_step"})
#: Start of a virtual-time run when the scenario names none (deterministic captures).
DEFAULT_START: Final = pd.Timestamp("2026-01-01T00:00:00Z")


@dataclass(frozen=True)
class OutpostSpec:
    """One outpost of the fleet.

    Parameters
    ----------
    pk : str
        The outpost's uuid (``/ws/outpost/<pk>/``).
    token : str
        Its API token (sent as ``Authorization: Bearer``; never written to a capture or truth).
    replicas : int
        Processes running this outpost at the same time (each its own instance uuid).
    version : str
        authentik version the processes start with.
    name : str, optional
        Human name, used in hostnames (defaults to the pk's first 8 characters).
    """

    pk: str
    token: str = field(default="", repr=False)
    replicas: int = 1
    version: str = "2023.10.0"
    name: str | None = None

    @property
    def label(self) -> str:
        """``name``, or the pk's first 8 characters."""
        return self.name or self.pk[:8]


@dataclass(frozen=True)
class Fault:
    """A scripted fault (see the module docstring for what each kind does).

    Parameters
    ----------
    kind : str
        One of :data:`FAULT_KINDS`.
    outpost : str or None
        pk of the outpost it hits (``None`` for server faults).
    at : float
        Seconds from the start of the run.
    duration : float
        Seconds the fault lasts (network down, hang, restart downtime, ...).
    replica : int
        Which replica of the outpost.
    version : str, optional
        ``upgrade``: the version the new process runs.
    delay : float, optional
        ``slow_network``: extra one-way delay; ``latency_spike``: extra ACK
        latency (seconds); both default to a fifth of the HELLO interval.
        ``interval_change``: the new HELLO interval (default twice the
        interval); ``ack_dup``: the second ACK's lag (default 1 ms);
        ``clock_step``: how far the clock steps back (default 2 s).
    """

    kind: str
    outpost: str | None = None
    at: float = 0.0
    duration: float = 0.0
    replica: int = 0
    version: str | None = None
    delay: float | None = None


@dataclass(frozen=True)
class Notice:
    """A ``/ws/client/`` notice authentik pushes to every browser at ``at`` seconds."""

    at: float
    message: str
    level: str = "info"


@dataclass(frozen=True)
class Scenario:
    """A simulated fleet and what happens to it.

    Parameters
    ----------
    outposts : sequence of OutpostSpec
    duration : float
        Length of the run, seconds.
    interval : float
        HELLO interval, seconds (authentik's is 10; tests use 0.2). Reconnect
        backoff (1 s doubling, capped at 300 s) is scaled by ``interval / 10``.
    jitter : float
        Each gap between HELLOs is ``interval * (1 + U(-jitter, +jitter))``.
    ack_latency : float
        Seconds authentik takes to ACK a frame (plus ``latency_spike`` faults).
    faults : sequence of Fault
    browsers : int
        Browsers holding ``/ws/client/`` for the whole run.
    notices : sequence of Notice
        Notices pushed to the browsers.
    seed : int
        Seeds everything random (instance uuids, jitter, connection ids).
    start : pandas.Timestamp, optional
        Wall-clock start of a virtual-time run (default :data:`DEFAULT_START`);
        a real-time run starts now.
    capture_start : float
        Seconds into the run when the capture starts (virtual time; see the
        module docstring). Default 0: the capture sees the whole run.

    Examples
    --------
    >>> sc = Scenario.generate(outposts=3, duration=10, interval=0.2, seed=1)
    >>> len(sc.outposts)
    3
    """

    outposts: Sequence[OutpostSpec]
    duration: float = 60.0
    interval: float = HELLO_INTERVAL_S
    jitter: float = 0.05
    ack_latency: float = 0.003
    faults: Sequence[Fault] = ()
    browsers: int = 0
    notices: Sequence[Notice] = ()
    seed: int = 0
    start: pd.Timestamp | None = None
    capture_start: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "outposts", tuple(self.outposts))
        object.__setattr__(self, "faults", tuple(sorted(self.faults, key=lambda f: f.at)))
        object.__setattr__(self, "notices", tuple(sorted(self.notices, key=lambda n: n.at)))
        if self.start is not None:
            start = pd.Timestamp(self.start)
            object.__setattr__(self, "start", start.tz_localize("UTC") if start.tzinfo is None else start)
        self._validate()

    # ---------------------------------------------------------------- checks

    def _validate(self) -> None:
        def bad(msg: str) -> ConfigurationError:
            return ConfigurationError(f"scenario: {msg}")

        for name in ("duration", "interval"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise bad(f"{name} must be a positive number of seconds, not {value!r}")
        if not 0 <= self.jitter < 0.5:
            raise bad(f"jitter must be a fraction in [0, 0.5), not {self.jitter!r}")
        if self.ack_latency < 0:
            raise bad("ack_latency must be >= 0 seconds")
        if self.browsers < 0:
            raise bad("browsers must be >= 0")
        if not 0 <= self.capture_start < self.duration:
            raise bad(f"capture_start must be in [0, duration), not {self.capture_start!r}")
        pks: dict[str, OutpostSpec] = {}
        for spec in self.outposts:
            if not isinstance(spec, OutpostSpec):
                raise bad(f"outposts must be OutpostSpec objects, not {type(spec).__name__}")
            if spec.pk in pks:
                raise bad(f"outpost {spec.pk} is listed twice")
            if spec.replicas < 1:
                raise bad(f"outpost {spec.pk} needs at least one replica")
            pks[spec.pk] = spec
        for f in self.faults:
            if f.kind not in FAULT_KINDS:
                raise bad(f"unknown fault kind {f.kind!r} (one of {', '.join(FAULT_KINDS)})")
            if f.at < 0 or f.duration < 0 or (f.delay is not None and f.delay < 0):
                raise bad(f"{f.kind} fault: at, duration and delay must be >= 0")
            if f.kind in SERVER_FAULTS:
                continue
            if f.outpost not in pks:
                raise bad(f"{f.kind} fault at {f.at}s names unknown outpost {f.outpost!r}")
            if not 0 <= f.replica < pks[f.outpost].replicas:
                raise bad(f"{f.kind} fault at {f.at}s: outpost {f.outpost} has no replica {f.replica}")

    # ---------------------------------------------------------------- derived

    @property
    def scale(self) -> float:
        """Factor applied to authentik's real-world delays (``interval / 10``)."""
        return self.interval / HELLO_INTERVAL_S

    def outpost_index(self, pk: str) -> int:
        """Position of outpost *pk* in :attr:`outposts`."""
        for i, spec in enumerate(self.outposts):
            if spec.pk == pk:
                return i
        raise ConfigurationError(f"scenario: no outpost {pk!r}")

    @property
    def tokens(self) -> dict[str, str]:
        """pk -> token, as :class:`~wsreplay.sim.MockAuthentik` takes them."""
        return {s.pk: s.token for s in self.outposts}

    def fault_delay(self, fault: Fault) -> float:
        """The ``delay`` of *fault*, or its kind's default (see :class:`Fault`)."""
        if fault.delay is not None:
            return fault.delay
        defaults = {"interval_change": 2 * self.interval, "ack_dup": 0.001, "clock_step": 2.0}
        return defaults.get(fault.kind, self.interval / 5)

    def with_start(self, start: pd.Timestamp | str | None) -> Scenario:
        """A copy starting at *start*."""
        return replace(self, start=None if start is None else pd.Timestamp(start))

    # ---------------------------------------------------------------- (de)serialise

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (tokens left out: they are secrets)."""
        d: dict[str, Any] = {
            "duration": self.duration,
            "interval": self.interval,
            "jitter": self.jitter,
            "ack_latency": self.ack_latency,
            "browsers": self.browsers,
            "seed": self.seed,
            "start": None if self.start is None else self.start.isoformat(),
            "capture_start": self.capture_start,
            "outposts": [_fields(s, exclude=("token",)) for s in self.outposts],
            "faults": [_fields(f) for f in self.faults],
            "notices": [_fields(n) for n in self.notices],
        }
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Rebuild a scenario from :meth:`to_dict` (tokens are derived from the pk when missing)."""
        try:
            outposts = [
                OutpostSpec(**{"token": token_for(o["pk"], int(data.get("seed", 0))), **o}) for o in data["outposts"]
            ]
            return cls(
                outposts=outposts,
                duration=float(data["duration"]),
                interval=float(data["interval"]),
                jitter=float(data.get("jitter", 0.05)),
                ack_latency=float(data.get("ack_latency", 0.003)),
                faults=[Fault(**f) for f in data.get("faults", [])],
                browsers=int(data.get("browsers", 0)),
                notices=[Notice(**n) for n in data.get("notices", [])],
                seed=int(data.get("seed", 0)),
                start=data.get("start"),
                capture_start=float(data.get("capture_start", 0.0)),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigurationError(f"scenario description is incomplete or malformed: {exc}") from exc

    # ---------------------------------------------------------------- generator

    @classmethod
    def generate(
        cls,
        outposts: int = 24,
        duration: float = 120.0,
        interval: float = HELLO_INTERVAL_S,
        seed: int = 0,
        *,
        faults: bool = True,
        browsers: int = 0,
        jitter: float = 0.05,
        ack_latency: float | None = None,
        replica_share: float = 0.2,
        fault_every: float = 600.0,
        start: pd.Timestamp | str | None = None,
        capture_start: float = 0.0,
    ) -> Scenario:
        """A random, deterministic fleet and fault script.

        Parameters
        ----------
        outposts : int
            Number of outposts; about ``replica_share`` of them run two replicas.
        duration, interval : float
            Seconds.
        seed : int
            Same seed, same scenario.
        faults : bool
            Script faults: per replica about one every ``fault_every``
            intervals (disconnects, hangs, restarts, upgrades, crashes, slow
            networks, interval changes), plus, when the run is at least 100
            intervals long, one server restart, one ACK latency spike, one
            stretch of dropped and one of doubled ACKs (a ``clock_step`` is
            never generated: script it). Disconnects end early enough for the outpost
            to reconnect before the run ends (a network down until the end
            looks, in a capture, exactly like a crash).
        fault_every : float
            Mean number of intervals between two faults of one replica
            (exponentially distributed gaps; default 600).
        capture_start : float
            Seconds into the run when the capture starts (see the module docstring).
        browsers : int
            Browsers on ``/ws/client/``; a notice is pushed about every 50 intervals.
        ack_latency : float, optional
            Defaults to 3 ms scaled by ``interval / 10`` (at least 1 ms).
        """
        from .scenario_gen import generate_scenario

        return generate_scenario(
            cls,
            outposts,
            duration,
            interval,
            seed,
            faults=faults,
            browsers=browsers,
            jitter=jitter,
            ack_latency=ack_latency,
            replica_share=replica_share,
            fault_every=fault_every,
            start=start,
            capture_start=capture_start,
        )


def _fields(obj: Any, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """A flat dataclass as a dict (``dataclasses.asdict`` deep-copies: 10x slower on big scripts)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj) if f.name not in exclude}


def token_for(pk: str, seed: int) -> str:
    """The API token of outpost *pk* in a scenario with *seed* (derived, so it is never stored)."""
    return hashlib.sha256(f"wsreplay-sim:{seed}:{pk}".encode()).hexdigest()[:60]
