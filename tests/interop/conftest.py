"""Fixtures of the interop tests: a capture with every kind of row, and a browser."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for ``from interop_support import ...``

from interop_support import sample_rows, write_capture


@pytest.fixture
def sample_capture(tmp_path: Path) -> Path:
    """A capture directory holding :func:`interop_support.sample_rows`."""
    return write_capture(tmp_path / "capture", sample_rows())


@pytest.fixture(scope="session")
def chromium_binary() -> str:
    """A Chromium binary; Debian's ``chromium`` is installed when missing (see ``tests/browser.py``)."""
    from browser import LAST_REASON, ensure_chromium

    binary = ensure_chromium()
    if binary is None:
        import browser

        pytest.skip(browser.LAST_REASON or LAST_REASON)
    return binary
