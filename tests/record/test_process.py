"""The settings of a recording process (applied by ``wsreplay record``, never by the library)."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa


def test_tune_recorder_process_sets_allocator_threads_and_switch_interval():
    code = (
        "import sys, pyarrow as pa\n"
        "from wsreplay.record.process import tune_recorder_process\n"
        "tune_recorder_process()\n"
        "print(pa.default_memory_pool().backend_name, pa.cpu_count(), sys.getswitchinterval())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["system", "1", "0.0005"]


def test_importing_the_recorder_changes_no_process_setting():
    before = (pa.default_memory_pool().backend_name, pa.cpu_count(), sys.getswitchinterval())
    import wsreplay.record.api
    import wsreplay.record.process  # noqa: F401

    assert (pa.default_memory_pool().backend_name, pa.cpu_count(), sys.getswitchinterval()) == before
