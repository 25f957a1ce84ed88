"""The compiled kernels (wsreplay/analysis/_kernels.c) against their numpy versions, on any rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsreplay.analysis import _native, _rows
from wsreplay.analysis._common import NO_TIME, Codes, categorical, categorical_take, is_sorted
from wsreplay.analysis._group import _group_cummax_numpy, group_cummax
from wsreplay.analysis._rows import C_ACK, C_ERROR, OutpostRows, _refreshes_by_numpy, refreshes_by
from wsreplay.analysis.coverage import _up_periods, _up_periods_numpy
from wsreplay.analysis.hello import _valid_gaps, _valid_gaps_numpy
from wsreplay.analysis.latency import _pair_next_c, _pair_next_numpy

kernels = _native.kernels
pytestmark = pytest.mark.skipif(kernels is None, reason="the C kernels were not compiled")


def outpost_rows(
    conn: np.ndarray, cls: np.ndarray, ts: np.ndarray, n_conn: int, instance: np.ndarray | None = None
) -> OutpostRows:
    """Just what the kernels read: connection and instance codes, classes and times of rows in time order."""
    n = len(conn)
    unknown = np.full(n, -1, dtype=np.int64)
    none = Codes(np.zeros(0, dtype=np.int64), pd.Index([]))
    return OutpostRows(
        ts=ts,
        conn=conn,
        instance=unknown if instance is None else instance,
        outpost=unknown,
        conn_codes=Codes(conn, pd.Index([f"c{k}" for k in range(n_conn)])),
        instance_codes=none,
        outpost_codes=none,
        cls=cls,
        conn_end=np.full(n_conn, NO_TIME, dtype=np.int64),
        conn_end_kind=np.zeros(n_conn, dtype=np.int8),
        conn_instance=np.full(n_conn, -1, dtype=np.int64),
        conn_outpost=np.full(n_conn, -1, dtype=np.int64),
        selection=None,
        parse_errors=0,
    )


def pair_next_c(rows: OutpostRows) -> tuple[np.ndarray, int]:
    """The C pairing, checked against the rows it reports, in the numpy version's shape."""
    req_idx, sent, ack_ts, latency, answered, n_acks = _pair_next_c(rows)
    np.testing.assert_array_equal(req_idx, np.flatnonzero(rows.refresh & (rows.conn >= 0)))
    np.testing.assert_array_equal(sent, rows.ts[req_idx])
    want_latency = np.where(ack_ts == NO_TIME, np.nan, (ack_ts - sent).astype(np.float64) / 10**9)
    np.testing.assert_array_equal(latency, want_latency)
    assert n_acks == int(np.count_nonzero(rows.ack & (rows.conn >= 0)))
    return ack_ts, answered


# rows: (connection code or -1, class); mostly refreshes and ACKs, some of every other class
row = st.tuples(st.integers(-1, 6), st.sampled_from([0, 0, 1, C_ACK, C_ACK, 3, 4, 5, C_ERROR]))


@settings(max_examples=300, deadline=None)
@given(st.lists(row, max_size=200), st.sampled_from([np.int8, np.int16, np.int32, np.int64]), st.integers(0, 3))
def test_pair_next_equals_numpy_on_any_rows(items, dtype, extra_conns):
    n = len(items)
    conn = np.array([c for c, _ in items], dtype=dtype)
    cls = np.array([k for _, k in items], dtype=np.uint8)
    ts = np.arange(n, dtype=np.int64) * 1_000_000 + 1_700_000_000 * 10**9
    rows = outpost_rows(conn, cls, ts, 7 + extra_conns)
    got, got_n = pair_next_c(rows)
    want, want_n = _pair_next_numpy(rows)
    np.testing.assert_array_equal(got, want)
    assert got_n == want_n


def test_pair_next_on_many_rows_of_many_connections():
    # more connections than 16 bits and ACKs many rows later: the numpy version's look-ahead and sort paths
    rng = np.random.default_rng(3)
    n = 300_000
    conn = rng.integers(-1, 70_000, n).astype(np.int32)
    cls = rng.choice(np.array([0, 1, C_ACK, 4, 5], dtype=np.uint8), n, p=[0.45, 0.05, 0.4, 0.05, 0.05])
    ts = np.sort(rng.integers(0, 10**12, n))
    rows = outpost_rows(conn, cls, ts, 70_000)
    got, got_n = pair_next_c(rows)
    want, want_n = _pair_next_numpy(rows)
    np.testing.assert_array_equal(got, want)
    assert got_n == want_n > 1000


def test_pair_next_rejects_what_it_cannot_read():
    assert kernels is not None
    conn = np.array([0, 0, 1], dtype=np.int64)
    cls = np.array([0, C_ACK, 0], dtype=np.uint8)
    ts = np.array([10**9, 3 * 10**9, 5 * 10**9], dtype=np.int64)

    def outputs(m: int = 2) -> list[np.ndarray]:
        return [*(np.empty(m, dtype=np.int64) for _ in range(3)), np.empty(m)]

    one = np.array([2])
    for part_frames in (one, np.array([1, 1]), np.array([1, 0, 1]), np.array([0, 1, 0, 1])):  # as count_refreshes cuts
        out = outputs()
        assert kernels.pair_next(conn, cls, ts, 2, part_frames, *out) == (1, 1)
        assert [o.tolist() for o in out[:3]] == [[3 * 10**9, NO_TIME], [0, 2], [10**9, 5 * 10**9]]
        assert out[3][0] == 2.0 and np.isnan(out[3][1])
    with pytest.raises(TypeError, match="conn must be a 1-d array of signed integers"):
        kernels.pair_next(conn.astype(np.float64), cls, ts, 2, one, *outputs())
    with pytest.raises(ValueError, match="one slot per refresh row"):
        kernels.pair_next(conn, cls, ts, 2, np.array([3]), *outputs(3))
    with pytest.raises(ValueError, match="one slot per refresh row"):
        kernels.pair_next(conn, cls, ts, 2, np.array([2, 0]), *outputs())  # the second part has a frame
    with pytest.raises(ValueError, match="adding up to the refresh rows"):
        kernels.pair_next(conn, cls, ts, 2, np.array([1]), *outputs())
    with pytest.raises(ValueError, match="adding up to the refresh rows"):
        kernels.pair_next(conn, cls, ts, 2, np.array([3, -1]), *outputs())
    with pytest.raises(ValueError, match="adding up to the refresh rows"):
        kernels.pair_next(conn, cls, ts, 2, np.zeros(0, dtype=np.int64), *outputs(0))
    with pytest.raises(ValueError, match="connection code is >= n_conn"):
        kernels.pair_next(conn, cls, ts, 1, one, *outputs())
    with pytest.raises(ValueError, match="one item per row"):
        kernels.pair_next(conn, cls[:2], ts, 2, one, *outputs())
    with pytest.raises(ValueError, match="n_conn must be >= 0"):
        kernels.pair_next(conn, cls, ts, -1, one, *outputs())
    with pytest.raises(ValueError, match="latency \\(float64\\) must have one item per refresh row"):
        kernels.pair_next(conn, cls, ts, 2, one, *outputs()[:3], np.empty(2, dtype=np.float32))


def test_pair_next_on_threads_equals_numpy(monkeypatch):
    # frames whose answer (or next frame) is in a later part, or several parts later
    from wsreplay.analysis import _native

    rng = np.random.default_rng(8)
    n = 40_000
    conn = rng.integers(-1, 3000, n).astype(np.int16)
    conn[::7] = 5  # one busy connection
    cls = rng.choice(np.array([0, 1, C_ACK, 4, 5], dtype=np.uint8), n, p=[0.45, 0.05, 0.4, 0.05, 0.05])
    rows = outpost_rows(conn, cls, np.sort(rng.integers(0, 10**12, n)), 3000)
    want = _pair_next_numpy(rows)
    monkeypatch.setattr(_native, "PART_MIN_ROWS", 0)
    monkeypatch.setattr(_native.os, "sched_getaffinity", lambda _: set(range(16)))
    for n_parts in (1, 2, 3, 4):
        monkeypatch.setattr(_native, "MAX_PARTS", n_parts)
        got = pair_next_c(rows)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1] == want[1]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-1, 5), st.integers(-1, 3), st.integers(-1, 3), st.integers(0, 6)), max_size=200),
    st.sampled_from([np.int8, np.int16, np.int32, np.int64]),
    st.integers(0, 2),
)
def test_refreshes_by_equals_numpy_on_any_rows(items, dtype, extra_keys):
    # (key, instance, connection, class) per row; -1 is an unknown code
    n = len(items)
    key, inst, conn, cls = (np.array([it[i] for it in items], dtype=dtype) for i in range(4))
    ts = np.cumsum(np.arange(n, dtype=np.int64) % 3) + 1_700_000_000 * 10**9  # ties too
    rows = outpost_rows(conn, cls.astype(np.uint8), ts, 4, instance=inst)
    got = refreshes_by(rows, key, 6 + extra_keys)
    want = _refreshes_by_numpy(rows, key, 6 + extra_keys)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
        assert g.dtype == w.dtype or g.dtype == np.int64


@pytest.mark.parametrize("n_parts", [1, 2, 3])
def test_group_refreshes_on_parts_of_the_rows(n_parts):
    # each part counted and filled on its own thread; parts may hold no row of a key, or no row at all
    assert kernels is not None
    key = np.array([0, 1, 0], dtype=np.int16)
    cls = np.array([0, 1, 0], dtype=np.uint8)
    ts = np.array([1, 2, 3], dtype=np.int64)
    counts = np.full((n_parts, 2), 7, dtype=np.int64)
    assert kernels.count_refreshes(key, key, cls, key, counts) == 3
    assert counts.sum(axis=0).tolist() == [2, 1]
    out = [np.empty(3, dtype=np.int64) for _ in range(3)]
    hello = np.empty(3, dtype=bool)
    kernels.group_refreshes(key, key, cls, key, ts, counts, *out, hello)
    assert [o.tolist() for o in out] == [[0, 2, 1], [1, 3, 2], [0, 0, 1]]
    assert hello.tolist() == [True, True, False]


def test_refreshes_by_on_several_threads_equals_numpy(monkeypatch):
    from wsreplay.analysis import _native

    rng = np.random.default_rng(11)
    n = 50_000
    inst = rng.integers(-1, 300, n).astype(np.int16)
    conn = rng.integers(-1, 900, n).astype(np.int32)
    cls = rng.integers(0, 7, n).astype(np.uint8)
    rows = outpost_rows(conn, cls, np.sort(rng.integers(0, 10**12, n)), 900, instance=inst)
    want = _refreshes_by_numpy(rows, inst, 300)
    for n_parts in (1, 2, 4):
        monkeypatch.setattr(_native, "PART_MIN_ROWS", 0)
        monkeypatch.setattr(_native, "MAX_PARTS", n_parts)
        monkeypatch.setattr(_native.os, "sched_getaffinity", lambda _: set(range(8)))
        for g, w in zip(refreshes_by(rows, inst, 300), want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_group_refreshes_rejects_what_it_cannot_read():
    assert kernels is not None
    key = np.array([0, 1, 0], dtype=np.int16)
    cls = np.array([0, 1, 0], dtype=np.uint8)
    ts = np.array([1, 2, 3], dtype=np.int64)
    counts = np.empty((1, 2), dtype=np.int64)
    assert kernels.count_refreshes(key, key, cls, key, counts) == 3
    out = [np.empty(3, dtype=np.int64) for _ in range(3)]
    hello = np.empty(3, dtype=bool)
    with pytest.raises(ValueError, match=r"a key is >= counts.shape\[1\]"):
        kernels.count_refreshes(key, key, cls, key, np.empty((1, 1), dtype=np.int64))
    with pytest.raises(ValueError, match="one item per row"):
        kernels.count_refreshes(key[:2], key, cls, key, counts)
    with pytest.raises(ValueError, match=r"shape \(parts, n_keys\)"):
        kernels.count_refreshes(key, key, cls, key, counts.astype(np.int32))
    with pytest.raises(ValueError, match=r"shape \(parts, n_keys\)"):
        kernels.count_refreshes(key, key, cls, key, np.empty(2, dtype=np.int64))
    with pytest.raises(ValueError, match=r"shape \(parts, n_keys\)"):
        kernels.count_refreshes(key, key, cls, key, np.empty((17, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="counts do not match the rows"):
        kernels.group_refreshes(key, key, cls, key, ts, np.array([[1, 2]]), *out, hello)
    with pytest.raises(ValueError, match="counts do not match the rows"):
        kernels.group_refreshes(key, key, cls, key, ts, np.array([[3, 0]]), *out, hello)
    with pytest.raises(ValueError, match="one slot per counted row"):
        kernels.group_refreshes(key, key, cls, key, ts, np.array([[2, 2]]), *out, hello)
    with pytest.raises(ValueError, match="one per counted row"):
        kernels.group_refreshes(key, key, cls, key, ts, counts, *out, hello[:2])
    with pytest.raises(TypeError, match="ts must be a 1-d array of signed integers"):
        kernels.group_refreshes(key, key, cls, key, ts.astype(np.float64), counts, *out, hello)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(-(2**63), 2**63 - 1)), max_size=100),
    st.sampled_from([0, 10, 2**40]),
)
def test_group_cummax_and_is_sorted_equal_numpy(items, bound):
    first = np.array([f for f, _ in items], dtype=bool)
    values = np.array([v if not bound else v % bound for _, v in items], dtype=np.int64)
    np.testing.assert_array_equal(group_cummax(values, first), _group_cummax_numpy(values, first))
    for a in (values, np.sort(values), group_cummax(values, np.zeros(len(values), dtype=bool))):
        assert is_sorted(a) == (len(a) < 2 or bool((a[1:] >= a[:-1]).all()))


def test_group_cummax_and_is_sorted_reject_what_they_cannot_read():
    assert kernels is not None
    with pytest.raises(ValueError, match="values must be int64"):
        kernels.group_cummax(np.zeros(3, dtype=np.int32), np.zeros(3, dtype=bool))
    with pytest.raises(ValueError, match="one item per value"):
        kernels.group_cummax(np.zeros(3, dtype=np.int64), np.zeros(2, dtype=bool))
    with pytest.raises(TypeError, match="a must be int64"):
        kernels.is_sorted(np.zeros(3, dtype=np.int32))
    with pytest.raises(ValueError, match="not C-contiguous"):
        kernels.group_cummax(np.zeros(3, dtype=np.int64)[::2], np.zeros(2, dtype=bool))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 3)), max_size=150))
def test_valid_gaps_equal_numpy(items):
    # (instance, connection, time step) per HELLO, sorted by instance; steps of 0 make ties (gap 0: unusable)
    items = sorted(items, key=lambda it: it[0])
    inst = np.array([it[0] for it in items], dtype=np.int64)
    conn = np.array([it[1] for it in items], dtype=np.int64)
    ts = np.cumsum([it[2] for it in items]).astype(np.int64) * 10**9
    for got, want in zip(_valid_gaps(inst, ts, conn), _valid_gaps_numpy(inst, ts, conn), strict=True):
        np.testing.assert_array_equal(got, want)


def test_valid_gaps_rejects_what_it_cannot_read():
    assert kernels is not None
    a = np.zeros(3, dtype=np.int64)
    with pytest.raises(ValueError, match="one item per HELLO"):
        kernels.valid_gaps(a, a, a[:2], np.empty(3, dtype=bool), a.copy(), a.copy(), a.copy())
    with pytest.raises(ValueError, match="valid must be bool"):
        kernels.valid_gaps(a, a, a, np.empty(2, dtype=bool), a.copy(), a.copy(), a.copy())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-1, 2), st.integers(-1, 1), st.integers(-1, 4)), max_size=100),
    st.sampled_from([np.int8, np.int16]),
)
def test_classify_equals_numpy(items, dtype):
    event_c = Codes(np.zeros(0, dtype=np.int8), pd.Index(["open", "message", "close"]))
    dir_c = Codes(np.zeros(0, dtype=np.int8), pd.Index(["to_server", "to_peer"]))
    name_c = Codes(np.zeros(0, dtype=np.int8), pd.Index(["HELLO", "ACK", "TRIGGER_UPDATE", "OTHER", "UNKNOWN"]))
    event, direction, name = (np.array([it[i] for it in items], dtype=dtype) for i in range(3))
    got = _rows._classify(event, direction, name, event_c, dir_c, name_c)
    saved, _rows.kernels = _rows.kernels, None
    try:
        want = _rows._classify(event, direction, name, event_c, dir_c, name_c)
    finally:
        _rows.kernels = saved
    np.testing.assert_array_equal(got, want)
    assert got.dtype == want.dtype == np.uint8


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-1, 9), min_size=1, max_size=100),
    st.lists(st.integers(0, 10**6), max_size=100),
    st.sampled_from([np.int8, np.int16, np.int32, np.int64]),
)
def test_categorical_take_equals_categorical_of_the_gather(codes, picks, dtype):
    codes = np.array(codes, dtype=dtype)
    positions = np.array([p % len(codes) for p in picks], dtype=np.int64)
    categories = pd.Index([f"v{k}" for k in range(10)])
    got = categorical_take(codes, positions, categories)
    want = categorical(codes[positions], categories)
    pd.testing.assert_extension_array_equal(got, want)


def test_classify_and_take_codes_reject_what_they_cannot_read():
    assert kernels is not None
    c = np.array([0, 1], dtype=np.int8)
    out = np.empty(2, dtype=np.uint8)
    table = np.arange(27, dtype=np.uint8).reshape(3, 3, 3)
    for n_parts in (1, 2, 3):  # 3 parts of 2 rows: one is empty
        kernels.classify(c, c, c, table, out, n_parts)
        assert out.tolist() == [13, 26]
    with pytest.raises(ValueError, match="a code is outside the table"):
        kernels.classify(c, c, c, np.zeros((2, 2, 2), dtype=np.uint8), out, 2)
    with pytest.raises(ValueError, match="3-d uint8"):
        kernels.classify(c, c, c, np.zeros((3, 3), dtype=np.uint8), out, 1)
    with pytest.raises(ValueError, match="one item per row"):
        kernels.classify(c, c, c[:1], table, out, 1)
    with pytest.raises(ValueError, match="parts must be 1 to 16"):
        kernels.classify(c, c, c, table, out, 0)
    used = np.zeros(2, dtype=bool)
    with pytest.raises(ValueError, match="an index is outside codes"):
        kernels.take_codes(c, np.array([2]), np.empty(1, dtype=np.int8), used, 1)
    with pytest.raises(ValueError, match="a code is >= len"):
        kernels.take_codes(c, np.array([1]), np.empty(1, dtype=np.int8), used[:1], 1)
    with pytest.raises(ValueError, match="out of the codes' dtype"):
        kernels.take_codes(c, np.array([1]), np.empty(1, dtype=np.int16), used, 1)
    with pytest.raises(ValueError, match="parts must be 1 to 16"):
        kernels.take_codes(c, None, None, used, 17)


@pytest.mark.parametrize("n_parts", [1, 2, 3, 16])
def test_take_codes_on_parts_marks_what_every_part_saw(n_parts):
    assert kernels is not None
    codes = np.array([3, -1, 0, 3, 5, 5, 1], dtype=np.int16)
    used = np.zeros(7, dtype=bool)
    assert not kernels.take_codes(codes, None, None, used, n_parts)
    assert used.tolist() == [True, True, False, True, False, True, False]
    out = np.empty(4, dtype=np.int16)
    used[:] = False
    assert kernels.take_codes(codes, np.array([6, 4, 4, 0]), out, used, n_parts)
    assert out.tolist() == [1, 5, 5, 3] and np.flatnonzero(used).tolist() == [1, 3, 5]


def test_connections_seen_equals_numpy():
    rng = np.random.default_rng(2)
    conn = rng.integers(-1, 5000, 100_000).astype(np.int16)
    conn[conn == 77] = -1
    got = _rows.connections_seen(conn, 5001)
    saved, _rows.kernels = _rows.kernels, None
    try:
        want = _rows.connections_seen(conn, 5001)
    finally:
        _rows.kernels = saved
    np.testing.assert_array_equal(got, want)
    assert not got[77] and not got[5000] and got.sum() > 4000


@pytest.mark.parametrize("n_parts", [1, 2, 3, 16])
def test_run_medians_on_parts_equal_numpy(n_parts):
    assert kernels is not None
    rng = np.random.default_rng(n_parts)
    lengths = rng.integers(1, 60, 500)
    lengths[::50] = 1  # runs of one gap
    values = rng.integers(-(10**12), 10**12, int(lengths.sum()))
    values[:3000] //= 10**11  # many ties
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    out = np.empty(len(starts))
    kernels.run_medians(values, starts, out, n_parts)
    ends = np.append(starts[1:], len(values))
    np.testing.assert_array_equal(out, [np.median(values[a:b]) for a, b in zip(starts, ends, strict=True)])


def test_run_medians_rejects_what_it_cannot_read():
    assert kernels is not None
    a = np.zeros(3, dtype=np.int64)
    with pytest.raises(ValueError, match="out float64 with one item per start"):
        kernels.run_medians(a, np.array([0, 1]), np.empty(2, dtype=np.float32), 1)
    with pytest.raises(ValueError, match="starts must be increasing positions"):
        kernels.run_medians(a, np.array([2, 1]), np.empty(2), 1)
    with pytest.raises(ValueError, match="parts must be 1 to 16"):
        kernels.run_medians(a, np.array([0]), np.empty(1), 0)
    out = np.empty(2)
    kernels.run_medians(np.array([4, 1, 3], dtype=np.int64), np.array([0, 3]), out, 2)
    assert out[0] == 3.0 and np.isnan(out[1])  # an empty run has no median


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4), st.integers(0, 40), st.integers(0, 3)), max_size=120),
    st.lists(st.sampled_from([0, 5, 30, 1000, NO_TIME]), min_size=4, max_size=4),
    st.booleans(),
)
def test_up_periods_equal_numpy(items, conn_end, observed):
    # (group, time step, state lifetime, connection) per refresh; groups sorted, time order within
    items = sorted(items, key=lambda it: it[0])
    g = np.array([it[0] for it in items], dtype=np.int64)
    t = np.cumsum([it[1] for it in items]).astype(np.int64)
    e = t + np.array([it[2] for it in items], dtype=np.int64)
    conn = np.array([it[3] for it in items], dtype=np.int64)
    ends = np.array(conn_end, dtype=np.int64)
    e_c, e_n = e.copy(), e.copy()
    got = _up_periods(g, t, conn, e_c, ends, observed)
    want = _up_periods_numpy(g, t, conn, e_n, ends, observed)
    np.testing.assert_array_equal(e_c, e_n)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_up_periods_rejects_what_it_cannot_read():
    assert kernels is not None
    a = np.zeros(3, dtype=np.int64)
    flags = [np.empty(3, dtype=bool) for _ in range(2)]
    with pytest.raises(ValueError, match="a connection code is outside conn_end"):
        kernels.up_periods(a, a, a + 2, a.copy(), np.zeros(2, dtype=np.int64), True, *flags, a.copy(), flags[0])
    with pytest.raises(ValueError, match="must be bool, one per refresh"):
        kernels.up_periods(a, a, a, a.copy(), a, True, *flags, a.copy(), np.empty(2, dtype=bool))
    with pytest.raises(TypeError, match="cm must be a 1-d array of signed integers"):
        kernels.up_periods(a, a, a, a.copy(), a, True, *flags, np.empty(3), flags[0])
    with pytest.raises(ValueError, match="must be int64"):
        kernels.up_periods(a, a, a, a.copy(), a, True, *flags, np.empty(3, dtype=np.int32), flags[0])


def test_the_stub_names_every_kernel():
    import ast
    from pathlib import Path

    stub = Path(_native.__file__).with_name("_kernels.pyi")
    tree = ast.parse(stub.read_text())
    declared = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert kernels is not None
    assert declared == set(kernels.__all__) == {name for name in dir(kernels) if not name.startswith("_")}
