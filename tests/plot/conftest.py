"""Fixtures of the plot tests: a small simulated fleet with known faults; figures closed after each test."""

from __future__ import annotations

from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from presentation_support import simulated_frames

from wsreplay.sim import Truth


@pytest.fixture(scope="session")
def simulated() -> tuple[pd.DataFrame, Truth]:
    """Frames and truth of ``presentation_support.fleet_scenario()``."""
    return simulated_frames()


@pytest.fixture(scope="session")
def frames(simulated: tuple[pd.DataFrame, Truth]) -> pd.DataFrame:
    return simulated[0]


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")
