"""The one compiled piece: the recorder's per-message fast path (wsreplay/record/_speedups.c).

Everything else is in pyproject.toml. The extension is optional: without a C compiler the
install goes on and the recorder uses the same function in Python (wsreplay/record/frames.py).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("wsreplay.record._speedups", ["wsreplay/record/_speedups.c"], optional=True)])
