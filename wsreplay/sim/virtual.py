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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa

from ..exceptions import CaptureError
from ..store.segments import PARQUET_SUFFIX, STREAM_SUFFIX
from .scenario import Scenario
from .truth_data import TRUTH_DIR, Truth
from .virtual_capture import CHUNK_ROWS, SEGMENT_ROWS, CaptureColumns, write_segments, write_through_writer
from .virtual_driver import REFUSED_STATUS, drive

__all__ = ["simulate_virtual", "virtual_table", "REFUSED_STATUS", "CHUNK_ROWS", "SEGMENT_ROWS"]


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
    driver, start = drive(scenario)
    capture_id = driver.plan.capture_id
    if out is None:
        return driver.truth.build(clock="virtual", scenario=scenario.to_dict())
    target = Path(out)
    if target.exists() and any(p.suffix in (PARQUET_SUFFIX, STREAM_SUFFIX) for p in target.iterdir()):
        raise CaptureError(f"{target} already holds a capture; simulate into a new directory")
    cols = CaptureColumns(driver, start.value, capture_id)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        # the segments are written on the pool while this thread builds (and saves) the truth
        pending = [] if via_writer else write_segments(cols, target, segment_rows, pool)
        if via_writer:
            write_through_writer(cols, target)
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
    driver, start = drive(scenario)
    cols = CaptureColumns(driver, start.value, driver.plan.capture_id)
    table = cols.table(0, len(cols)).combine_chunks()
    truth = driver.truth.build(clock="virtual", scenario=scenario.to_dict(), capture_id=driver.plan.capture_id)
    return table, truth
