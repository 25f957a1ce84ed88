"""The lazy public surface (``wsreplay/_lazy.py``): every name still there, nothing heavy imported early."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import wsreplay


def run_python(code: str) -> str:
    """Run *code* in a fresh interpreter (an import is only measurable once per process); return stdout."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_wsreplay_loads_neither_pandas_nor_matplotlib():
    out = run_python("""
        import sys
        import wsreplay
        print(sorted(m for m in ("pandas", "matplotlib", "websockets") if m in sys.modules))
    """)
    assert out == "[]"


def test_dir_lists_every_public_name():
    assert set(wsreplay.__all__) <= set(dir(wsreplay))
    assert set(wsreplay.record.__all__) <= set(dir(wsreplay.record))
    assert set(wsreplay.store.__all__) <= set(dir(wsreplay.store))


def test_unknown_name_is_an_attribute_error():
    out = run_python("""
        import wsreplay
        try:
            wsreplay.no_such_name
        except AttributeError as exc:
            print(exc)
    """)
    assert out == "module 'wsreplay' has no attribute 'no_such_name'"


def test_public_functions_and_their_implementation_modules_coexist():
    # The implementation packages are named apart from the functions (the README's naming rule), so
    # importing them first, lazily or not, never hides a public function.
    out = run_python("""
        import types
        import wsreplay.playback.client, wsreplay.reporting.html, wsreplay.record.prober
        import wsreplay
        for f in (wsreplay.replay, wsreplay.report, wsreplay.record.probe):
            print(isinstance(f, types.ModuleType), callable(f), f.__name__)
        print(isinstance(wsreplay.playback.client, types.ModuleType), isinstance(wsreplay.analysis, types.ModuleType))
    """)
    assert out.splitlines() == ["False True replay", "False True report", "False True probe", "True True"]
