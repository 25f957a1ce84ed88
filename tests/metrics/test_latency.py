"""Live ACK pairing (the analysis' "next" rule) and the histogram it feeds."""

from __future__ import annotations

import numpy as np
import pytest

from wsreplay.metrics.latency import AckPairing, Histogram

MS = 1_000_000


def feed(p: AckPairing, rows: list[tuple[str, int, str]]) -> list[float]:
    """rows: (conn, ms, "req" | "ack")."""
    ids = sorted({c for c, _, _ in rows})
    conn = np.array([ids.index(c) for c, _, _ in rows], dtype=np.int64)
    ts = np.array([t * MS for _, t, _ in rows], dtype=np.int64)
    req = np.array([k == "req" for _, _, k in rows])
    return [round(x * 1000, 6) for x in p.feed(ids, conn, ts, req).tolist()]


def test_each_frame_takes_the_first_ack_after_it_and_before_the_next_frame() -> None:
    p = AckPairing()
    got = feed(
        p,
        [
            ("a", 0, "req"),
            ("b", 1, "req"),
            ("a", 3, "ack"),  # a: 3 ms
            ("a", 4, "ack"),  # duplicate: ignored
            ("b", 5, "req"),  # b's first frame is never answered: no sample
            ("b", 12, "ack"),  # b: 7 ms
            ("a", 20, "ack"),  # nothing waiting: ignored
        ],
    )
    assert sorted(got) == [3.0, 7.0]


def test_a_frame_waiting_at_the_end_of_a_batch_is_answered_in_the_next_unless_its_connection_ended() -> None:
    p = AckPairing()
    assert feed(p, [("a", 0, "req"), ("b", 0, "req")]) == []
    p.forget("b")
    assert feed(p, [("a", 9, "ack"), ("b", 9, "ack")]) == [9.0]
    assert p.waiting == {}


def test_histogram_buckets_are_cumulative_and_a_bound_is_inclusive() -> None:
    h = Histogram([0.01, 0.1])
    h.observe(np.array([0.005, 0.01, 0.05, 3.0]))
    h.observe(np.zeros(0))
    assert h.buckets() == [(0.01, 2), (0.1, 3), (float("inf"), 4)]
    assert h.count == 4
    assert h.sum == pytest.approx(3.065)
