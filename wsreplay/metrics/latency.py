"""Live ACK latency: :func:`wsreplay.ack_latency`'s pairing, one batch of recorded rows at a time.

Pairing rule (the analysis' ``"next"`` rule): on each connection, every
non-ACK frame the outpost sends (a refresh) pairs with the first ACK authentik
sends after it and before the connection's next non-ACK frame. A frame that
gets no such ACK (another frame came first, the connection ended) gives no
sample; an ACK with no frame waiting is ignored. A frame still waiting at the
end of a batch is carried over to the next one.

Sans I/O: arrays in, latencies out, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

__all__ = ["AckPairing", "Histogram", "LATENCY_BUCKETS"]

NS: Final = 1_000_000_000
#: Upper bounds (seconds) of the ACK latency histogram's buckets (``+Inf`` is implied).
LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class AckPairing:
    """Pairs refreshes with ACKs across batches (state: each connection's waiting frame).

    Examples
    --------
    >>> p = AckPairing()
    >>> import numpy as np
    >>> p.feed(["c"], np.array([0, 0, 0]), np.array([0, 2_000_000, 5_000_000]), np.array([True, False, False]))
    array([0.002])
    """

    def __init__(self) -> None:
        #: conn id -> ns time of its frame still waiting for an ACK
        self.waiting: dict[str, int] = {}

    def feed(self, conn_ids: Sequence[str], conn: np.ndarray, ts: np.ndarray, is_req: np.ndarray) -> np.ndarray:
        """Latencies (seconds) of the frames answered in this batch.

        Parameters
        ----------
        conn_ids : sequence of str
            The connection id of each code in *conn*.
        conn : int array
            Connection code per row.
        ts : int64 array
            Row times (ns), in time order within each connection.
        is_req : bool array
            ``True`` for a refresh sent to authentik, ``False`` for an ACK from it.
        """
        n = len(conn)
        if n == 0:
            return np.zeros(0)
        order = np.argsort(conn, kind="stable")
        c, t, r = conn[order], ts[order], is_req[order]
        first = np.ones(n, dtype=bool)
        first[1:] = c[1:] != c[:-1]
        prev = np.full(n, -1, dtype=np.int64)
        inner = ~first[1:] & r[:-1]
        prev[1:][inner] = t[:-1][inner]
        for i in np.flatnonzero(first & ~r).tolist():
            waiting = self.waiting.get(conn_ids[c[i]])
            if waiting is not None:
                prev[i] = waiting
        matched = ~r & (prev >= 0)
        # what is left waiting: each connection's last row if it is a refresh
        last = np.ones(n, dtype=bool)
        last[:-1] = first[1:]
        for i in np.flatnonzero(last).tolist():
            cid = conn_ids[c[i]]
            if r[i]:
                self.waiting[cid] = int(t[i])
            else:
                self.waiting.pop(cid, None)
        return (t[matched] - prev[matched]) / NS

    def forget(self, conn_id: str) -> None:
        """The connection ended: its waiting frame will never be answered."""
        self.waiting.pop(conn_id, None)


class Histogram:
    """Cumulative bucket counts and sum of observed values (what a Prometheus histogram exports).

    Parameters
    ----------
    bounds : sequence of float
        Increasing upper bounds; ``+Inf`` is added.
    """

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = np.asarray(bounds, dtype=float)
        self._counts = np.zeros(len(self.bounds) + 1, dtype=np.int64)
        self.sum = 0.0

    def observe(self, values: np.ndarray) -> None:
        """Add *values* (a value equal to a bound falls in that bound's bucket)."""
        if len(values):
            self._counts += np.bincount(np.searchsorted(self.bounds, values, side="left"), minlength=len(self._counts))
            self.sum += float(np.sum(values))

    @property
    def count(self) -> int:
        """Values observed."""
        return int(self._counts.sum())

    def buckets(self) -> list[tuple[float, int]]:
        """``(upper bound, cumulative count)`` per bucket, ``inf`` last."""
        cum = np.cumsum(self._counts).tolist()
        return list(zip([*self.bounds.tolist(), float("inf")], cum))
