"""Fixtures shared by the whole suite. Sub-packages keep their own in their conftest.py."""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")

# Tests only ever talk to this machine.
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

T0 = 1_795_838_763_000_000_000  # 2026-11-28T04:06:03Z in ns, the real-traffic fixture's day


@pytest.fixture
def t0() -> int:
    """A fixed epoch-ns timestamp for literal frames."""
    return T0
