"""The settings of a recording process (applied by ``wsreplay record``, never by the library)."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa


def test_tune_recorder_process_sets_the_switch_interval_and_loads_no_pyarrow():
    code = (
        "import sys\n"
        "from wsreplay.record.process import tune_recorder_process\n"
        "tune_recorder_process()\n"
        "print(sys.getswitchinterval(), 'pyarrow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0.0005", "False"]


def test_importing_the_recorder_changes_no_process_setting():
    before = (pa.default_memory_pool().backend_name, pa.cpu_count(), sys.getswitchinterval())
    import wsreplay.record.api
    import wsreplay.record.process  # noqa: F401

    assert (pa.default_memory_pool().backend_name, pa.cpu_count(), sys.getswitchinterval()) == before
