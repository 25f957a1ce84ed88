"""Computing the ground truth of a simulated run: what really happened, to check analyses against.

Definitions
-----------
*Instance* (one outpost process, one instance uuid)
    **up** from the moment one of its HELLOs reaches the server until the
    moment its process stops being able to get a HELLO through: its network
    drops (``disconnect``), it hangs (``silent``), or the server closes its
    connection (``server_restart``); it is then **down** until its next HELLO
    reaches the server. That down interval is an instance outage, with the
    cause that started it. An outage still open when the process exits ends at
    the exit; one still open at the end of the run ends there. Before its
    first HELLO reaches the server an instance is neither up nor down (it is
    starting), and a process that exits (``restart``, ``upgrade``) simply
    stops being up: that is not an instance outage.
*Outpost*
    **down** while none of its instances is up, from its first up moment on
    (so the first connection of the run is not an outage). The cause of an
    outpost outage is why its last instance stopped being up: an instance
    outage cause, or ``restart`` / ``upgrade`` when the process exited. The
    end of the run is not an outage.

*Crash* (a process killed: TCP reset)
    the process exits at that moment: like a ``restart`` it is no instance
    outage (an outage already running ends there); the outpost's gap until
    its successor is up has cause ``crash``.
*Late capture* (``Scenario.capture_start``)
    outages and instances are clipped to the captured span: an outage in
    progress when the capture starts begins, in the truth, at the capture's
    start (a capture cannot see further back).
*Clock step* (``clock_step``)
    the truth stays on the true clock; only the capture's timestamps move.

"Reaches the server" is the time the frame is handed to the server's socket
(the send time plus any ``slow_network`` delay). Slow networks and latency
spikes delay frames but are not outages. These definitions differ on purpose
from authentik's own view (an instance vanishes 15 s after its last frame)
and from what a capture can show: analyses are judged by how close they
come to this truth.

Timestamps are pandas UTC Timestamps on the capture's clock.

:func:`compute_outages` applies these definitions; :class:`TruthBuilder`
collects what a driver saw and builds the :class:`~wsreplay.sim.truth_data.Truth`
(its tables and files live in :mod:`wsreplay.sim.truth_data`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .plan import Life
from .truth_data import TRUTH_COLUMNS, Truth

__all__ = [
    "TruthBuilder",
    "compute_outages",
]

# ----------------------------------------------------------------- computing outages


def compute_outages(
    lives: Sequence[Life],
    arrivals: dict[str, np.ndarray],
    downs: dict[str, list[tuple[float, str]]],
    *,
    life_spans: dict[str, tuple[float, float]] | None = None,
    duration: float,
) -> list[tuple[str, str, str | None, float, float, str]]:
    """Instance and outpost outages from what happened, in seconds (see the module docstring).

    Parameters
    ----------
    lives : sequence of Life
        Every process.
    arrivals : dict
        instance uuid -> sorted times its HELLOs reached the server.
    downs : dict
        instance uuid -> (time, cause) moments it stopped being able to get HELLOs through.
    life_spans : dict, optional
        instance uuid -> (start, end) actually observed (defaults to the planned ones).
    duration : float
        End of the run.

    Returns
    -------
    list of tuple
        ``(level, outpost_uuid, instance_uuid, start, end, cause)``.
    """
    out: list[tuple[str, str, str | None, float, float, str]] = []
    ups: dict[str, list[tuple[float, float, str]]] = {}
    for life in lives:
        iid = life.instance_uuid
        _, end = (life_spans or {}).get(iid, (life.start, life.end))
        end = min(end, duration)
        arr = arrivals.get(iid, np.empty(0))
        arr = arr[arr <= end]
        up_intervals = ups.setdefault(life.pk, [])
        if len(arr) == 0:
            continue
        up_from: float | None = float(arr[0])
        for t_down, cause in sorted(downs.get(iid, [])):
            if up_from is None or t_down < up_from or t_down >= end:
                continue  # not up (yet / again): nothing to lose
            up_intervals.append((up_from, t_down, cause))
            k = int(np.searchsorted(arr, t_down, side="right"))
            back = float(arr[k]) if k < len(arr) else end
            out.append(("instance", life.pk, iid, t_down, back, cause))
            up_from = float(arr[k]) if k < len(arr) else None
        if up_from is not None:
            up_intervals.append((up_from, end, life.end_cause if end < duration else "end"))
    for pk, intervals in ups.items():
        if not intervals:
            continue
        intervals.sort()
        reach, cause = intervals[0][1], intervals[0][2]
        for s, e, c in intervals[1:]:
            if s > reach:
                out.append(("outpost", pk, None, reach, s, cause))
            if e >= reach:
                reach, cause = e, c
        if reach < duration:
            out.append(("outpost", pk, None, reach, duration, cause))
    return out


class TruthBuilder:
    """Collects what a driver saw, in seconds from the start, and builds a :class:`Truth`.

    Both drivers (real time and virtual time) feed it the same way, so the
    truth of both clocks is computed by the same code.
    """

    def __init__(
        self, lives: Sequence[Life], *, duration: float, start: pd.Timestamp, capture_start: float = 0.0
    ) -> None:
        self.lives = list(lives)
        self.duration = duration
        self.start = start
        self.capture_start = capture_start
        self._index = {life.instance_uuid: i for i, life in enumerate(self.lives)}
        self._spans: dict[str, list[float]] = {}
        self._hello_inst: list[np.ndarray] = []
        self._hello_sent: list[np.ndarray] = []
        self._hello_arrived: list[np.ndarray] = []
        self._ack_inst: list[np.ndarray] = []
        self._ack_sent: list[np.ndarray] = []
        self._ack_at: list[np.ndarray] = []
        self._downs: dict[str, list[tuple[float, str]]] = {}
        self._conns: list[dict[str, Any]] = []
        self._notices: list[dict[str, Any]] = []

    # -------------------------------------------------------------- feeding

    def begin(self, life: Life, at: float) -> None:
        """Process *life* started at *at*."""
        self._spans[life.instance_uuid] = [at, self.duration]

    def end(self, life: Life, at: float) -> None:
        """Process *life* exited at *at*."""
        self._spans.setdefault(life.instance_uuid, [life.start, at])[1] = at

    def hellos(self, life: Life, sent: np.ndarray, arrived: np.ndarray) -> None:
        """HELLOs sent (and when they reached the server; NaN if never)."""
        if len(sent):
            self._hello_inst.append(np.full(len(sent), self._index[life.instance_uuid], dtype=np.int32))
            self._hello_sent.append(np.asarray(sent, dtype=float))
            self._hello_arrived.append(np.asarray(arrived, dtype=float))

    def acks(self, life: Life, sent: np.ndarray, acked: np.ndarray) -> None:
        """ACKs received: the HELLO's send time and the ACK's arrival."""
        if len(sent):
            self._ack_inst.append(np.full(len(sent), self._index[life.instance_uuid], dtype=np.int32))
            self._ack_sent.append(np.asarray(sent, dtype=float))
            self._ack_at.append(np.asarray(acked, dtype=float))

    def down(self, life: Life, at: float, cause: str) -> None:
        """*life* stopped being able to get HELLOs through at *at*."""
        self._downs.setdefault(life.instance_uuid, []).append((at, cause))

    def connection(
        self,
        *,
        life: Life | None,
        attempt: int,
        at: float,
        ok: bool,
        status: int | None = None,
        browser: int | None = None,
    ) -> dict[str, Any]:
        """A connection attempt; returns its record so the driver can fill in how it ended."""
        rec = {
            "endpoint": "outpost" if life is not None else "client",
            "outpost_uuid": life.pk if life is not None else None,
            "instance_uuid": life.instance_uuid if life is not None else None,
            "browser": browser,
            "attempt": attempt,
            "ts": at,
            "ok": ok,
            "status": status,
            "opened": at if ok else np.nan,
            "closed": np.nan,
            "close_code": None,
            "closed_by": None,
        }
        self._conns.append(rec)
        return rec

    def notice(self, browser: int, at: float, level: str | None, message: str | None) -> None:
        """A notice a browser received."""
        self._notices.append({"browser": browser, "ts": at, "level": level, "message": message})

    # -------------------------------------------------------------- building

    def _ts(self, seconds: Any) -> pd.DatetimeIndex:
        x = np.asarray(seconds, dtype=float)
        ns = np.round(x * 1e9)
        ns[np.isnan(x)] = 0
        out = ns.astype(np.int64) + self.start.value
        out[np.isnan(x)] = np.iinfo(np.int64).min  # NaT
        return pd.DatetimeIndex(out.view("datetime64[ns]")).tz_localize("UTC")

    def build(self, *, clock: str, scenario: dict[str, Any], capture_id: str | None = None) -> Truth:
        """The :class:`Truth` of everything fed so far."""
        pks = [life.pk for life in self.lives]
        iids = [life.instance_uuid for life in self.lives]
        pk_cats = pd.Index(pks).unique()
        pk_code = np.asarray(pk_cats.get_indexer(pd.Index(pks)), dtype=np.int32)
        iid_cats = pd.Index(iids)

        def cat(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts) if parts else np.empty(0)

        def ids(idx: np.ndarray) -> dict[str, Any]:
            idx = idx.astype(np.int32, copy=False)
            return {
                "outpost_uuid": pd.Categorical.from_codes(pk_code[idx], categories=pk_cats),
                "instance_uuid": pd.Categorical.from_codes(idx, categories=iid_cats),
            }

        # grouped by instance (in the order the driver fed them), in time order within each
        inst, sent, arrived = cat(self._hello_inst), cat(self._hello_sent), cat(self._hello_arrived)
        hellos = pd.DataFrame({**ids(inst), "ts": self._ts(sent), "arrived": self._ts(arrived)})
        a_inst, a_sent, a_at = cat(self._ack_inst), cat(self._ack_sent), cat(self._ack_at)
        acks = pd.DataFrame(
            {**ids(a_inst), "sent_ts": self._ts(a_sent), "ack_ts": self._ts(a_at), "latency_s": a_at - a_sent}
        )

        # arrivals per instance, sorted, for the outage computation
        arrivals: dict[str, np.ndarray] = {}
        ok = ~np.isnan(arrived)
        inst_ok, arr_ok = inst[ok].astype(np.int64), arrived[ok]
        if len(inst_ok) and not bool((inst_ok[1:] >= inst_ok[:-1]).all()):
            order = np.argsort(inst_ok, kind="stable")
            inst_ok, arr_ok = inst_ok[order], arr_ok[order]
        bounds = np.searchsorted(inst_ok, np.arange(len(self.lives) + 1))
        for i, life in enumerate(self.lives):
            arr = arr_ok[bounds[i] : bounds[i + 1]]
            arrivals[life.instance_uuid] = arr if bool((arr[1:] >= arr[:-1]).all()) else np.sort(arr)
        spans = {k: (v[0], v[1]) for k, v in self._spans.items()}
        lives = [life for life in self.lives if life.instance_uuid in spans]
        rows = compute_outages(lives, arrivals, self._downs, life_spans=spans, duration=self.duration)
        cs = self.capture_start
        if cs > 0:
            # a late capture: only what happened from its start on (an outage in progress starts there)
            rows = [(lv, pk, iid, max(s0, cs), e0, c) for lv, pk, iid, s0, e0, c in rows if e0 > cs]
            spans = {k: (max(v[0], cs), v[1]) for k, v in spans.items() if v[1] > cs}
            lives = [life for life in lives if life.instance_uuid in spans]
        outages = pd.DataFrame(
            rows, columns=["level", "outpost_uuid", "instance_uuid", "start", "end", "cause"]
        ).astype({"level": object, "outpost_uuid": object, "instance_uuid": object, "cause": object})
        outages["duration_s"] = outages["end"].astype(float) - outages["start"].astype(float)
        outages["start"] = self._ts(outages["start"].to_numpy(dtype=float))
        outages["end"] = self._ts(outages["end"].to_numpy(dtype=float))
        outages = outages[["level", "outpost_uuid", "instance_uuid", "start", "end", "duration_s", "cause"]]
        outages = outages.sort_values(["level", "start", "outpost_uuid"], kind="stable").reset_index(drop=True)

        inst_rows = []
        for life in lives:
            s, e = spans[life.instance_uuid]
            inst_rows.append(
                {
                    "outpost_uuid": life.pk,
                    "instance_uuid": life.instance_uuid,
                    "replica": life.replica,
                    "version": life.version,
                    "hostname": life.hostname,
                    "start": s,
                    "end": e,
                    "end_cause": life.end_cause,
                }
            )
        instances = pd.DataFrame(inst_rows, columns=list(TRUTH_COLUMNS["instances"].columns))
        instances["replica"] = instances["replica"].astype("int64")
        for col in ("start", "end"):
            instances[col] = self._ts(instances[col].to_numpy(dtype=float))

        conns = pd.DataFrame(
            self._conns,
            columns=[
                "endpoint",
                "outpost_uuid",
                "instance_uuid",
                "browser",
                "attempt",
                "ts",
                "ok",
                "status",
                "opened",
                "closed",
                "close_code",
                "closed_by",
            ],
        )
        for col in ("ts", "opened", "closed"):
            conns[col] = self._ts(conns[col].to_numpy(dtype=float))
        conns = conns.astype(
            {
                "browser": "Int64",
                "attempt": "int64",
                "ok": bool,
                "status": "Int64",
                "close_code": "Int64",
                "endpoint": object,
                "outpost_uuid": object,
                "instance_uuid": object,
                "closed_by": object,
            }
        )
        conns = conns.sort_values("ts", kind="stable").reset_index(drop=True)
        notices = pd.DataFrame(self._notices, columns=["browser", "ts", "level", "message"])
        notices["ts"] = self._ts(notices["ts"].to_numpy(dtype=float))
        notices = notices.astype({"browser": "int64", "level": object, "message": object})
        return Truth(
            outages=outages,
            hellos=hellos,
            acks=acks,
            instances=instances,
            connections=conns,
            notices=notices.sort_values("ts", kind="stable").reset_index(drop=True),
            start=self.start,
            end=self.start + pd.Timedelta(seconds=self.duration),
            clock=clock,
            scenario=scenario,
            capture_id=capture_id,
        )
