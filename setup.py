"""The compiled pieces: the recorder's per-message fast path (wsreplay/record/_speedups.c) and the
analyses' per-connection passes (wsreplay/analysis/_kernels.c).

Everything else is in pyproject.toml. Both extensions are optional: without a C compiler the
install goes on and the same functions run in Python (wsreplay/record/frames.py) and numpy
(wsreplay/analysis/latency.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("wsreplay.record._speedups", ["wsreplay/record/_speedups.c"], optional=True),
        Extension("wsreplay.analysis._kernels", ["wsreplay/analysis/_kernels.c"], optional=True),
    ]
)
