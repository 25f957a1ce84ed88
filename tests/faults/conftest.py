"""Fixtures of the fault suite: one figure collector per session, printed as a table at the end."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from faults_support import FIGURES, FIGURES_ENV, Figures, secret_hits

#: scenario -> [paths scanned, secrets found]
_SCANNED: dict[str, list[int]] = {}


@pytest.fixture(scope="session")
def figures() -> Figures:
    """Scenarios add the figures they measured: ``figures.add(scenario, name, value, expect)``."""
    return FIGURES


@pytest.fixture
def no_secrets(figures: Figures):
    """Call with the paths a scenario wrote: counts the secrets found in their bytes (must be 0)."""

    def check(scenario: str, *paths: Path) -> None:
        hits = secret_hits(paths)
        tally = _SCANNED.setdefault(scenario, [0, 0])
        tally[0] += len(paths)
        tally[1] += len(hits)
        assert not hits, hits

    return check


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for scenario, (paths, hits) in _SCANNED.items():
        FIGURES.add(scenario, f"secrets found in the bytes of {paths} written captures/logs/reports", hits, "0")
    if _SCANNED:
        files = sum(t[0] for t in _SCANNED.values())
        found = sum(t[1] for t in _SCANNED.values())
        FIGURES.add("~ all scenarios", f"secrets found in everything written ({files} paths)", found, "0")
    _SCANNED.clear()
    if not FIGURES.rows:
        return
    terminalreporter.write_sep("=", "fault suite figures")
    terminalreporter.write_line(FIGURES.table())
    target = os.environ.get(FIGURES_ENV)
    if target:
        FIGURES.save(target)
