"""Fixtures of the report tests: a simulated capture on disk with its truth."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest
from presentation_support import fleet_scenario

import wsreplay
from wsreplay.sim import Truth, simulate_virtual


@pytest.fixture(scope="session")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    """A capture directory of ``fleet_scenario()`` (3 outposts, 3 outages, an upgrade, a latency spike)."""
    out = tmp_path_factory.mktemp("report") / "fleet"
    truth = simulate_virtual(fleet_scenario(), out)
    return out, truth


@pytest.fixture(scope="session")
def default_report(capture: tuple[Path, Truth]) -> wsreplay.Report:
    """``wsreplay.report(capture)`` with the default options, built once."""
    return wsreplay.report(capture[0])
