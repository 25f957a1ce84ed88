"""ACK pairing and latency percentiles, on literal captures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_support import Capture, at
from hypothesis import given, settings
from hypothesis import strategies as st

from wsreplay.analysis import ack_latency, latency_percentiles
from wsreplay.exceptions import ConfigurationError

pytestmark = pytest.mark.usefixtures("implementation")  # the C pairing and its numpy version


def test_each_frame_is_paired_with_its_ack(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 30, ack=0.004)
    lat = ack_latency(cap.frames())
    assert list(lat.columns) == [
        "conn_id",
        "outpost_uuid",
        "instance_uuid",
        "instruction_name",
        "sent_ts",
        "ack_ts",
        "latency_s",
    ]
    assert lat["latency_s"].round(6).tolist() == [0.004] * 3
    assert lat["instruction_name"].tolist() == ["HELLO"] * 3
    assert lat["sent_ts"].tolist() == [at(0), at(10), at(20)]


def test_pipelined_frames_pair_with_the_ack_before_the_next_frame_or_in_order_with_fifo(cap: Capture):
    c = cap.outpost("pk", "A").open(0)
    c.hello(0, ack=None).hello(1, ack=None).ack(1.5).ack(2.5)
    frames = cap.frames()
    lat = ack_latency(frames)  # the first frame got no ACK before the second one went out
    assert np.isnan(lat["latency_s"].iloc[0]) and lat["latency_s"].iloc[1] == 0.5
    assert lat.attrs["unanswered"] == 1 and lat.attrs["unmatched_acks"] == 1
    assert ack_latency(frames, pairing="fifo")["latency_s"].tolist() == [1.5, 1.5]


def test_duplicates_are_ignored_and_missing_acks_are_nan_and_counted(cap: Capture):
    c = cap.outpost("pk", "A").open(0)
    c.ack(0.5)  # nothing was sent yet: a stray ACK
    c.hello(1, ack=0.01).ack(1.02)  # a duplicate
    c.hello(10, ack=0.02)
    c.send(12, "to_server", '{"instruction": 99}')  # unknown instruction: still ACKed by authentik
    c.ack(12.5)
    c.hello(20, ack=None)  # the connection broke before the ACK
    c.error(20.1)
    lat = ack_latency(cap.frames())
    assert lat["latency_s"].round(6).tolist()[:3] == [0.01, 0.02, 0.5]
    assert np.isnan(lat["latency_s"].iloc[3]) and lat["ack_ts"].isna().iloc[3]
    assert lat.attrs["unanswered"] == 1 and lat.attrs["unmatched_acks"] == 2
    assert lat["instruction_name"].tolist() == ["HELLO", "HELLO", "UNKNOWN", "HELLO"]


def test_a_dropped_ack_costs_one_unanswered_frame_and_shifts_nothing(cap: Capture):
    # issue #12: with the old default (fifo) one missing ACK made every later latency 10 s
    c = cap.outpost("pk", "A").open(0)
    c.hello(0, ack=None)  # dropped by the server
    c.hello(10, ack=0.003).hello(20, ack=0.003)
    frames = cap.frames()
    lat = ack_latency(frames)
    got = lat["latency_s"].round(6).tolist()
    assert np.isnan(got[0]) and got[1:] == [0.003, 0.003]
    assert lat.attrs["unanswered"] == 1 and lat.attrs["unmatched_acks"] == 0
    assert ack_latency(frames, pairing="next")["latency_s"].round(6).tolist()[1:] == [0.003, 0.003]
    fifo = ack_latency(frames, pairing="fifo")["latency_s"].round(6).tolist()
    assert fifo[:2] == [10.003, 10.003] and np.isnan(fifo[2])  # fifo trusts the server: documented
    with pytest.raises(ConfigurationError):
        ack_latency(frames, pairing="lifo")  # type: ignore[arg-type]


def test_a_doubled_ack_is_counted_and_shifts_nothing(cap: Capture):
    c = cap.outpost("pk", "A").open(0)
    c.hello(0, ack=0.003).ack(0.004)  # the server answered twice
    c.hello(10, ack=None)  # ... then not at all
    c.hello(20, ack=0.003).hello(30, ack=0.003)
    lat = ack_latency(cap.frames())
    got = lat["latency_s"].round(6).tolist()
    assert got[0] == 0.003 and np.isnan(got[1]) and got[2:] == [0.003, 0.003]
    assert lat.attrs["unanswered"] == 1 and lat.attrs["unmatched_acks"] == 1


def test_pairing_stays_per_connection_when_connections_interleave(cap: Capture):
    a = cap.outpost("pk", "A").open(0)
    b = cap.outpost("pk", "B").open(0)
    a.hello(1, ack=None)
    b.hello(1.1, ack=None)
    a.ack(1.2).ack(1.25)  # A's ACK, doubled
    b.hello(2, ack=0.01)  # B's first frame was never answered
    lat = ack_latency(cap.frames())
    got = lat["latency_s"].round(6).tolist()
    assert got[0] == 0.2 and np.isnan(got[1]) and got[2] == 0.01
    assert lat.attrs["unanswered"] == 1 and lat.attrs["unmatched_acks"] == 1


def test_acks_pair_per_connection(cap: Capture):
    a = cap.outpost("pk", "A").open(0)
    b = cap.outpost("pk", "B").open(0)
    a.hello(1, ack=None)
    b.hello(1.1, ack=None)
    b.ack(1.2)
    a.ack(1.5)
    lat = ack_latency(cap.frames()).set_index("instance_uuid")
    assert lat.loc["A", "latency_s"] == pytest.approx(0.5) and lat.loc["B", "latency_s"] == pytest.approx(0.1)


def test_percentiles_by_group_and_over_time(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 120, ack=0.002)
    cap.outpost("pk2", "B").open(0).hellos(0, 120, ack=0.010)
    frames = cap.frames()
    p = latency_percentiles(frames).set_index("outpost_uuid")
    assert p.loc["pk", "p50_s"] == pytest.approx(0.002) and p.loc["pk2", "p99_s"] == pytest.approx(0.010)
    assert p.loc["pk", "frames"] == 12 and p.loc["pk", "unanswered"] == 0
    assert {"answered", "mean_s", "max_s", "p90_s"} <= set(p.columns)
    t = latency_percentiles(ack_latency(frames), by=None, freq="1min", q=[0.5])
    assert len(t) == 2 and t["frames"].tolist() == [12, 12]
    assert str(t["time"].dtype) == "datetime64[ns, UTC]" and "p50_s" in t.columns
    whole = latency_percentiles(frames, by=None)
    assert len(whole) == 1 and whole["frames"].iloc[0] == 24
    with pytest.raises(ConfigurationError):
        latency_percentiles(frames, by="nope")
    with pytest.raises(ConfigurationError):
        latency_percentiles(frames, q=[2])
    with pytest.raises(ConfigurationError):
        latency_percentiles(frames, freq="often")


def test_latency_does_not_modify_its_input(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 30)
    frames = cap.frames()
    before = frames.copy()
    frames.pipe(ack_latency).pipe(latency_percentiles, by="instance_uuid")
    pd.testing.assert_frame_equal(frames, before)


def test_an_ack_many_rows_later_is_still_paired(cap: Capture):
    # the ACK comes after more rows of other connections than the look-ahead passes cover
    a = cap.outpost("pk", "A").open(0)
    b = cap.outpost("pk", "B").open(0)
    a.hello(1, ack=None)
    for k in range(40):
        b.hello(1.01 + k / 100, ack=0.001)
    a.ack(2)
    a.hello(3, ack=None)  # the last row of its connection: unanswered
    for k in range(40):
        b.hello(3.01 + k / 100, ack=0.001)
    lat = ack_latency(cap.frames()).set_index("sent_ts")
    assert lat.loc[at(1), "latency_s"] == pytest.approx(1.0)
    assert np.isnan(lat.loc[at(3), "latency_s"])
    assert lat.attrs["unanswered"] == 1 and lat.attrs["unmatched_acks"] == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.integers(1, 3)), min_size=1, max_size=120))
def test_next_pairing_equals_a_row_by_row_reference(events):
    # random interleavings of frames and ACKs (dropped, doubled, stray, pipelined, answered many rows
    # later) on six connections
    cap = Capture()
    conns = [cap.outpost("pk", f"I{k}").open(0) for k in range(6)]
    t = 1.0
    rows: list[tuple[int, bool, float]] = []
    for conn, is_ack, step in events:
        t += step / 10
        (conns[conn].ack(t) if is_ack else conns[conn].hello(t, ack=None))
        rows.append((conn, is_ack, t))
    want = []
    for i, (conn, is_ack, t0) in enumerate(rows):
        if is_ack:
            continue
        later = [(a, t1) for c, a, t1 in rows[i + 1 :] if c == conn]
        want.append(later[0][1] - t0 if later and later[0][0] else float("nan"))
    lat = ack_latency(cap.frames())
    np.testing.assert_allclose(lat["latency_s"].to_numpy(), np.array(want), atol=1e-6)
    n_acks = sum(1 for _, a, _ in rows if a)
    assert lat.attrs["unanswered"] == int(np.isnan(want).sum())
    assert lat.attrs["unmatched_acks"] == n_acks - int((~np.isnan(want)).sum())


def test_fleet_percentiles_of_pieces_are_those_of_the_rows_together(cap: Capture):
    from wsreplay.analysis.latency import fleet_latency_percentiles

    cap.outpost("pk", "A").open(0).hellos(0, 120, ack=0.002)
    cap.outpost("pk2", "B").open(0).hellos(0, 120, ack=0.010)
    lat = ack_latency(cap.frames())
    pieces = [lat[lat["outpost_uuid"] == pk] for pk in ("pk", "pk2")]
    for freq in (None, "1min", "W"):  # "W": not a fixed length, computed by pandas
        got = fleet_latency_percentiles(pieces, freq=freq, q=[0.5, 0.99])
        pd.testing.assert_frame_equal(got, latency_percentiles(lat, by=None, freq=freq, q=[0.5, 0.99]))
    assert fleet_latency_percentiles([]).empty
    with pytest.raises(ConfigurationError):
        fleet_latency_percentiles(pieces, freq="often")
    with pytest.raises(ConfigurationError):
        fleet_latency_percentiles(pieces, q=[1.5])
