"""Fixtures of the analysis tests."""

from __future__ import annotations

import pytest
from analysis_support import Capture


@pytest.fixture
def cap() -> Capture:
    """An empty literal capture to add connections to."""
    return Capture()
