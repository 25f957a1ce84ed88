"""Fixtures of the replay tests (the helpers live in ``tests/replay_support.py``)."""

from __future__ import annotations

import pandas as pd
import pytest
from replay_support import MiniAuthentik, literal_capture


@pytest.fixture
def capture(t0: int) -> pd.DataFrame:
    """The literal capture of :func:`replay_support.literal_capture`."""
    return literal_capture(t0)


@pytest.fixture
def capture_dir(tmp_path, capture):
    """The literal capture saved as a capture file."""
    import wsreplay

    return wsreplay.save(capture, tmp_path / "capture")


@pytest.fixture
def mini():
    """The :class:`replay_support.MiniAuthentik` class (use ``async with mini(...) as server``)."""
    return MiniAuthentik
