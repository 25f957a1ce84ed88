"""What a replay returns: the observed capture, per-connection outcomes, timing, and the check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..exceptions import ReplayMismatchError
from .match import CheckReport, Matcher, compare
from .observe import ObservedConnection
from .recording import ConnectionRecording, observed_connections
from .script import ReplayPlan

__all__ = ["ReplayResult", "assert_replay_matches", "EXIT_OK", "EXIT_MISMATCH", "EXIT_TARGET"]

#: Exit statuses of ``wsreplay replay`` (2 is a usage or capture error).
EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_TARGET = 3

#: Outcomes that mean the target did not let the replay happen as recorded.
_FAILURES = ("refused", "unreachable", "dropped", "closed")


@dataclass
class ReplayResult:
    """The outcome of :func:`wsreplay.replay`.

    Attributes
    ----------
    frames : pandas.DataFrame
        Everything observed during the replay, as a capture (same columns as
        :func:`wsreplay.load`): ``to_server`` frames are what the replay
        sent, ``to_peer`` frames what the target answered.
    connections : pandas.DataFrame
        One row per recorded connection: ``conn_id`` (recorded),
        ``replay_conn_id``, ``path``, ``recorded_status``, ``status``,
        ``sent``, ``to_send``, ``received``, ``recorded_received``,
        ``close_code``, ``closed_by``, ``outcome`` (``ok``, ``refused``,
        ``unreachable``, ``dropped``, ``closed``, ``not_replayed``),
        ``as_recorded`` (the outcome is what the capture saw) and ``detail``.
    timing : pandas.DataFrame
        One row per frame sent: ``conn_id``, ``frame`` (0-based),
        ``scheduled_s`` and ``actual_s`` (offsets from the connection's open;
        ``scheduled_s`` is NaN at ``speed="max"``), ``error_s``.
    plan : ReplayPlan
        What was replayed.
    capture_id : str
        Id of the replay's own capture.
    recordings : mapping
        Recorded conn_id -> :class:`~wsreplay.playback.recording.ConnectionRecording`
        of its replayed connection; :attr:`observed` summarises them.
    out : pathlib.Path or None
        Where that capture was written.
    aborted : str or None
        Why the replay stopped early, if it did.
    check : CheckReport or None
        The comparison, when the replay was asked to check.
    notes : list of str
        Warnings about the capture and the replay.
    """

    frames: pd.DataFrame
    connections: pd.DataFrame
    timing: pd.DataFrame
    plan: ReplayPlan
    capture_id: str
    recordings: Mapping[str, ConnectionRecording] = field(repr=False, default_factory=dict)
    out: Path | None = None
    aborted: str | None = None
    check: CheckReport | None = None
    notes: list[str] = field(default_factory=list)
    speed: float = 1.0
    lockstep: bool = False
    elapsed_s: float = 0.0
    _observed: dict[str, ObservedConnection] | None = field(default=None, init=False, repr=False)

    @property
    def observed(self) -> dict[str, ObservedConnection]:
        """Recorded conn_id -> what its replayed connection saw (summarised on first use)."""
        if self._observed is None:
            self._observed = observed_connections(self.recordings)
        return self._observed

    def compare(self, matcher: Matcher | None = None) -> CheckReport:
        """Compare what the target sent with the capture (see :class:`Matcher`)."""
        return compare(self.plan, self.observed, matcher)

    @property
    def problems(self) -> list[str]:
        """One line per connection the target did not let happen as recorded (and the abort, if any)."""
        lines = [f"replay aborted: {self.aborted}"] if self.aborted else []
        if len(self.connections):
            bad = self.connections[
                self.connections["outcome"].isin(_FAILURES) & ~self.connections["as_recorded"].astype(bool)
            ]
            for row in bad.itertuples():
                lines.append(f"connection {str(row.conn_id)[:8]} {row.path}: {row.outcome}: {row.detail}")
        return lines

    @property
    def ok(self) -> bool:
        """No problem, and the check (if any) passed."""
        return not self.problems and (self.check is None or self.check.ok)

    def exit_status(self) -> int:
        """``3`` if the target refused, was unreachable or went away; ``1`` if the check failed; else ``0``."""
        if self.problems:
            return EXIT_TARGET
        if self.check is not None and not self.check.ok:
            return EXIT_MISMATCH
        return EXIT_OK

    def summary(self) -> str:
        """A few lines: what was replayed and what happened."""
        c = self.connections
        speed = "max" if self.speed == float("inf") else f"{self.speed:g}x"
        mode = "lock-step" if self.lockstep else "timed"
        counts = c["outcome"].value_counts().to_dict() if len(c) else {}
        outcome = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        sent = int(c["sent"].sum()) if len(c) else 0
        received = int(c["received"].sum()) if len(c) else 0
        lines = [
            f"replayed {len(c)} connection(s) ({mode}, speed {speed}) in {self.elapsed_s:.2f} s: "
            f"{sent} frame(s) sent, {received} received; {outcome or 'nothing'}"
        ]
        if len(self.timing) and self.timing["error_s"].notna().any():
            err = self.timing["error_s"].abs()
            lines.append(
                f"timing: |actual - scheduled| p50 {err.quantile(0.5) * 1e3:.3f} ms, "
                f"p99 {err.quantile(0.99) * 1e3:.3f} ms"
            )
        if self.out is not None:
            lines.append(f"observed traffic written to {self.out} (capture {self.capture_id})")
        return "\n".join(lines)

    def raise_for_mismatch(self, matcher: Matcher | None = None, *, limit: int = 10) -> None:
        """Raise :class:`~wsreplay.exceptions.ReplayMismatchError` with the diff if anything differs."""
        assert_replay_matches(self, matcher, limit=limit)


def assert_replay_matches(result: ReplayResult, matcher: Matcher | None = None, *, limit: int = 10) -> CheckReport:
    """Fail with a readable diff if a replay's answers differ from the capture.

    Parameters
    ----------
    result : ReplayResult
        What :func:`wsreplay.replay` returned.
    matcher : Matcher, optional
        What counts as the same (default: names of the server's replies).
    limit : int
        Mismatches shown in the message.

    Returns
    -------
    CheckReport
        The (passing) comparison.

    Raises
    ------
    ReplayMismatchError
        An ``AssertionError`` whose message names each differing connection,
        frame and difference (and any connection the target refused or dropped).
    """
    report = result.compare(matcher)
    problems = [p for p in result.problems if p.startswith("replay aborted")]
    if report.ok and not problems:
        return report
    message = report.format(limit)
    if problems:
        message = "\n".join([*problems, message])
    raise ReplayMismatchError(message)
