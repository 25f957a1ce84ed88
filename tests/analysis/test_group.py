"""The group-wise primitives behind the analyses, checked against plain pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wsreplay.analysis._group import code_extent, group_cummax, group_cumsum, group_order, run_starts, scatter_order

pytestmark = pytest.mark.usefixtures("implementation")  # the C kernels and their numpy versions


@pytest.mark.parametrize("top", [10, 70_000, 5_000_000_000])
def test_group_order_is_a_stable_sort(top):
    rng = np.random.default_rng(top % 1000)
    codes = rng.integers(0, top, 5000)
    codes[:50] = codes[0]  # ties keep their order
    assert (group_order(codes) == np.argsort(codes, kind="stable")).all()
    assert len(group_order(np.zeros(0, dtype=np.int64))) == 0


@pytest.mark.parametrize("span", [1_000, 2**61, 2**63 - 1])
def test_running_sums_and_maxima_restart_per_group(span):
    rng = np.random.default_rng(1)
    g = np.sort(rng.integers(0, 40, 3000))
    values = rng.integers(-span if span > 2**62 else 0, span, 3000, dtype=np.int64)
    first = run_starts(g)
    expect_max = pd.Series(values).groupby(g).cummax().to_numpy()
    assert (group_cummax(values, first) == expect_max).all()
    flags = rng.random(3000) < 0.5
    assert (group_cumsum(flags, first) == pd.Series(flags.astype(int)).groupby(g).cumsum().to_numpy()).all()


def test_scatter_order_gives_ranks_among_the_mask():
    mask = np.array([True, False, True, True, False])
    assert scatter_order(mask, np.array([3, 0, 2])).tolist() == [2, 0, 1]


@pytest.mark.parametrize("n_codes", [1, 7, 3000])
def test_code_extent_is_the_minimum_and_maximum_per_code(n_codes):
    rng = np.random.default_rng(n_codes)
    codes = rng.integers(0, n_codes, 4000)
    values = rng.integers(-(2**62), 2**62, 4000, dtype=np.int64)
    low, high = code_extent(codes, values, n_codes + 2)  # the last two codes have no row
    expected = pd.Series(values).groupby(codes).agg(["min", "max"])
    assert (low[expected.index] == expected["min"]).all() and (high[expected.index] == expected["max"]).all()
    absent = np.setdiff1d(np.arange(n_codes + 2), expected.index)
    assert len(absent) >= 2
    assert (low[absent] == np.iinfo(np.int64).max).all() and (high[absent] == np.iinfo(np.int64).min).all()
