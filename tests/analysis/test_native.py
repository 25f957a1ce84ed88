"""analysis/_native.py: whether the C kernels are in use, and how many threads a pass gets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from wsreplay.analysis import _native


def test_the_kernels_are_compiled_where_a_c_compiler_is():
    """``make test`` installs with a compiler: the analyses there run the C kernels, not the numpy versions."""
    if shutil.which(str(sysconfig.get_config_var("CC") or "cc").split()[0]) is None:
        pytest.skip("no C compiler on this machine")
    if os.environ.get("WSREPLAY_NO_KERNELS"):
        pytest.skip("WSREPLAY_NO_KERNELS is set")
    assert _native.kernels is not None


def test_the_environment_can_turn_the_kernels_off():
    code = "from wsreplay.analysis import _native; print(_native.kernels is None)"
    env = {**os.environ, "WSREPLAY_NO_KERNELS": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"


def test_parts_are_one_per_cpu_at_most_four_and_one_for_small_passes(monkeypatch):
    monkeypatch.setattr(_native.os, "sched_getaffinity", lambda _: set(range(8)), raising=False)
    assert _native.parts(_native.PART_MIN_ROWS - 1) == 1
    assert _native.parts(_native.PART_MIN_ROWS) == _native.MAX_PARTS == 4
    monkeypatch.setattr(_native.os, "sched_getaffinity", lambda _: {0}, raising=False)
    assert _native.parts(10**9) == 1
