"""Live fleet health: the offline analysis' "up" rule, kept current one event at a time.

:class:`FleetHealth` is fed what the recorder wrote (connections opening and
ending, frames that refresh authentik's state) and answers, for any moment
passed in, which outposts are up. No clock is read here: every timestamp is
given, in nanoseconds since the epoch (UTC), so the rule can be tested with
literal timelines and evaluated exactly at the moment of a scrape.

The rule is :func:`wsreplay.outages`' with its defaults (``level="outpost"``,
``policy="observed"``, ``factor=1.5``, the interval observed or 10 s):

* a **refresh** is a frame an outpost sends to authentik that is not an ACK and
  whose instruction decoded (HELLO, and any other instruction);
* an instance is **up** from a refresh until ``factor x interval`` after it,
  unless another refresh extends it, and (observed policy) only while the
  connection that carried it is open: a close or a broken connection ends the
  up period at once;
* the **interval** of an instance is the median gap between its consecutive
  HELLOs on one connection (here: over its last ``history`` gaps); an instance
  with none takes its outpost's median, then the fleet's, then 10 s, unless
  ``interval=`` fixes it;
* an **outpost** is up while any of its instances is up. Before its first
  refresh it is not observed (neither up nor down), as in the analysis.

**Retention.** An outpost with no open connection whose last event is older
than ``retention`` seconds is forgotten (with its instances), so the number of
outposts tracked, and of series exported, stays bounded by the outposts seen
within the retention window.
"""

from __future__ import annotations

import itertools
import statistics
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from ..exceptions import ConfigurationError
from ..protocol import HELLO_INTERVAL_S

__all__ = ["FleetHealth", "OutpostState", "DEFAULT_FACTOR", "DEFAULT_RETENTION_S", "DEFAULT_HISTORY"]

NS: Final = 1_000_000_000
#: authentik's cache expiry: 1.5 HELLO intervals (the analysis' default ``factor``).
DEFAULT_FACTOR: Final = 1.5
#: Seconds an outpost stays in the series after its last connection ended and its last event.
DEFAULT_RETENTION_S: Final = 86_400.0
#: HELLO gaps kept per instance and outpost for the observed interval.
DEFAULT_HISTORY: Final = 32
_FLEET_HISTORY: Final = 1024


class _Gaps:
    """The last *size* HELLO gaps (ns) of an instance, an outpost or the fleet, and their median."""

    __slots__ = ("_gaps", "_median")

    def __init__(self, size: int) -> None:
        self._gaps: deque[int] = deque(maxlen=size)
        self._median: float | None = None

    def extend(self, gaps_ns: list[int]) -> None:
        self._gaps.extend(gaps_ns)
        self._median = None

    def median(self) -> float | None:
        """Median gap in ns (``None`` without gaps)."""
        if self._median is None and self._gaps:
            self._median = float(statistics.median(self._gaps))
        return self._median


@dataclass
class _Conn:
    endpoint: str
    outpost: str | None
    instance: str | None
    last_refresh: int | None = None
    last_hello: int | None = None


@dataclass
class _Instance:
    outpost: str
    gaps: _Gaps
    last_seen: int
    conns: int = 0


@dataclass
class _Outpost:
    gaps: _Gaps
    last_seen: int
    first_refresh: int | None = None
    last_hello: int | None = None
    conns: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class OutpostState:
    """What :meth:`FleetHealth.outposts` reports for one outpost at a given moment.

    Attributes
    ----------
    outpost : str
        The outpost's uuid.
    up : bool or None
        Up by the analysis' rule at that moment; ``None`` before its first refresh (not observed yet).
    instances_connected : int
        Distinct instances (known uuids) with an open connection.
    last_hello_ns : int or None
        When its last HELLO was recorded.
    """

    outpost: str
    up: bool | None
    instances_connected: int
    last_hello_ns: int | None


class FleetHealth:
    """Connections, outposts and their up/down state, fed with recorded events (sans I/O).

    Parameters
    ----------
    factor : float
        An instance stays up ``factor x interval`` after a refresh (authentik and
        :func:`wsreplay.outages`: 1.5).
    interval : float, optional
        Expected HELLO interval in seconds; observed per instance when omitted.
    retention : float
        Seconds after which an outpost without open connections and without
        events is forgotten.
    history : int
        HELLO gaps kept per instance and outpost for the observed interval.

    Examples
    --------
    >>> h = FleetHealth()
    >>> h.opened("c1", "outpost", "op", "i1", 0)
    >>> h.refreshed("c1", "op", "i1", last_ns=1 * NS, hellos_ns=[1 * NS])
    >>> [s.up for s in h.outposts(10 * NS)], [s.up for s in h.outposts(16 * NS)]
    ([True], [False])
    """

    def __init__(
        self,
        *,
        factor: float = DEFAULT_FACTOR,
        interval: float | None = None,
        retention: float = DEFAULT_RETENTION_S,
        history: int = DEFAULT_HISTORY,
    ) -> None:
        if not factor > 0:
            raise ConfigurationError(f"factor must be > 0, not {factor!r}")
        if interval is not None and not interval > 0:
            raise ConfigurationError(f"interval must be > 0 seconds, not {interval!r}")
        if not retention > 0:
            raise ConfigurationError(f"retention must be > 0 seconds, not {retention!r}")
        self.factor = float(factor)
        self.interval = interval
        self.retention_ns = int(retention * NS)
        self.history = int(history)
        self._conns: dict[str, _Conn] = {}
        self._open_by_endpoint: dict[str, int] = {}
        self._outposts: dict[str, _Outpost] = {}
        self._instances: dict[str, _Instance] = {}
        self._fleet_gaps = _Gaps(_FLEET_HISTORY)

    # ------------------------------------------------------------------ feeding

    def opened(self, conn_id: str, endpoint: str, outpost: str | None, instance: str | None, ts: int) -> None:
        """A WebSocket connection was accepted (its ``open`` row)."""
        if conn_id in self._conns:
            return
        conn = _Conn(endpoint, outpost if endpoint == "outpost" else None, None)
        self._conns[conn_id] = conn
        self._open_by_endpoint[endpoint] = self._open_by_endpoint.get(endpoint, 0) + 1
        if conn.outpost is not None:
            self._outpost(conn.outpost, ts).conns.add(conn_id)
            self._set_instance(conn, instance, ts)

    def ended(self, conn_id: str, ts: int) -> None:
        """A connection ended (its first ``close`` or ``error`` row); unknown ids are ignored."""
        conn = self._conns.pop(conn_id, None)
        if conn is None:
            return
        self._open_by_endpoint[conn.endpoint] -= 1
        if conn.outpost is not None:
            op = self._outpost(conn.outpost, ts)
            op.conns.discard(conn_id)
            if conn.instance is not None:
                inst = self._instances.get(conn.instance)
                if inst is not None:
                    inst.conns -= 1
                    inst.last_seen = max(inst.last_seen, ts)

    def refreshed(
        self, conn_id: str, outpost: str, instance: str | None, *, last_ns: int, hellos_ns: Iterable[int] = ()
    ) -> None:
        """Refreshes recorded on one connection: the latest at *last_ns*, the HELLOs among them at *hellos_ns*.

        *hellos_ns* must be in time order. Refreshes on a connection that is
        not open (it ended, or was never seen opening) change nothing: its up
        period is over. Refreshes without a known instance do not make the
        outpost up (as in the analysis) but their HELLOs are still its last HELLO.
        """
        conn = self._conns.get(conn_id)
        if conn is None or conn.outpost is None:
            return
        if instance is not None and conn.instance != instance:
            self._set_instance(conn, instance, last_ns)
        op = self._outpost(conn.outpost, last_ns)
        inst = self._instances.get(conn.instance) if conn.instance is not None else None
        hellos = list(hellos_ns)
        if hellos:
            seq = hellos if conn.last_hello is None else [conn.last_hello, *hellos]
            gaps = [b - a for a, b in itertools.pairwise(seq) if b > a]
            if gaps and inst is not None:
                inst.gaps.extend(gaps)
                op.gaps.extend(gaps)
                self._fleet_gaps.extend(gaps)
            conn.last_hello = hellos[-1]
            if op.last_hello is None or hellos[-1] > op.last_hello:
                op.last_hello = hellos[-1]
        if inst is None:
            return
        inst.last_seen = max(inst.last_seen, last_ns)
        if conn.last_refresh is None or last_ns > conn.last_refresh:
            conn.last_refresh = last_ns
        if op.first_refresh is None:
            op.first_refresh = last_ns

    def expire(self, now_ns: int) -> int:
        """Forget outposts (and instances) gone for longer than the retention; return how many outposts."""
        cutoff = now_ns - self.retention_ns
        gone = [pk for pk, op in self._outposts.items() if not op.conns and op.last_seen < cutoff]
        for pk in gone:
            del self._outposts[pk]
        stale = [
            iid
            for iid, inst in self._instances.items()
            if inst.conns <= 0 and (inst.last_seen < cutoff or inst.outpost not in self._outposts)
        ]
        for iid in stale:
            del self._instances[iid]
        return len(gone)

    # ---------------------------------------------------------------- reading

    def connections_open(self) -> dict[str, int]:
        """Open WebSocket connections per endpoint (``outpost``, ``client``, ``other``)."""
        return dict(self._open_by_endpoint)

    def expiry_ns(self, instance: str | None) -> int:
        """How long a refresh of *instance* keeps it up: ``factor x interval``, in ns."""
        return round(self.factor * self.interval_ns(instance))

    def interval_ns(self, instance: str | None) -> float:
        """The expected HELLO interval of *instance* (ns), with the analysis' fallbacks."""
        if self.interval is not None:
            return self.interval * NS
        inst = self._instances.get(instance) if instance is not None else None
        if inst is not None:
            for gaps in (inst.gaps, self._outposts[inst.outpost].gaps if inst.outpost in self._outposts else None):
                median = gaps.median() if gaps is not None else None
                if median is not None:
                    return median
        median = self._fleet_gaps.median()
        return median if median is not None else HELLO_INTERVAL_S * NS

    def outposts(self, now_ns: int) -> Iterator[OutpostState]:
        """The state of every tracked outpost at *now_ns* (after :meth:`expire`, if called)."""
        for pk, op in self._outposts.items():
            up: bool | None = None
            instances: set[str] = set()
            if op.first_refresh is not None:
                up = False
            for conn_id in op.conns:
                conn = self._conns[conn_id]
                if conn.instance is not None:
                    instances.add(conn.instance)
                if not up and conn.last_refresh is not None:
                    up = conn.last_refresh + self.expiry_ns(conn.instance) > now_ns
            yield OutpostState(pk, up, len(instances), op.last_hello)

    def __len__(self) -> int:
        """Outposts tracked."""
        return len(self._outposts)

    # ---------------------------------------------------------------- private

    def _outpost(self, pk: str, ts: int) -> _Outpost:
        op = self._outposts.get(pk)
        if op is None:
            op = self._outposts[pk] = _Outpost(_Gaps(self.history), ts)
        elif ts > op.last_seen:
            op.last_seen = ts
        return op

    def _set_instance(self, conn: _Conn, instance: str | None, ts: int) -> None:
        if instance is None or conn.outpost is None:
            return
        if conn.instance is not None:
            old = self._instances.get(conn.instance)
            if old is not None:
                old.conns -= 1
        conn.instance = instance
        inst = self._instances.get(instance)
        if inst is None:
            inst = self._instances[instance] = _Instance(conn.outpost, _Gaps(self.history), ts)
        inst.conns += 1
        inst.last_seen = max(inst.last_seen, ts)
