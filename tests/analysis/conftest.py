"""Fixtures of the analysis tests."""

from __future__ import annotations

import pytest
from analysis_support import Capture

from wsreplay.analysis import _cache, _common, _group, _native, _rows, coverage
from wsreplay.analysis import hello as hello_module
from wsreplay.analysis import latency as latency_module


@pytest.fixture
def cap() -> Capture:
    """An empty literal capture to add connections to."""
    return Capture()


@pytest.fixture(params=["compiled", "numpy"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the C kernels and with their numpy versions (``usefixtures("implementation")``).

    test_kernels.py compares the two directly; this runs the analyses' own tests on both. The
    shared-results cache is cleared so that neither reuses what the other computed.
    """
    if request.param == "numpy":
        for module in (_common, _rows, _group, coverage, hello_module, latency_module):
            monkeypatch.setattr(module, "kernels", None)
    elif _native.kernels is None:
        pytest.skip("the C kernels were not compiled")
    _cache.clear()
    return str(request.param)
