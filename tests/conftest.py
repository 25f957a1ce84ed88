"""Fixtures shared by the whole suite. Sub-packages keep their own in their conftest.py."""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")

# Tests only ever talk to this machine.
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop of the tests' own loops and of the `wsreplay record` processes they start "
        "(`make test` runs tests/record and tests/faults under both)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # The recorder suite runs under each loop: set it for asyncio.run() here, and through
    # WSREPLAY_LOOP for the recorder processes the tests start.
    loop = config.getoption("--loop")
    os.environ["WSREPLAY_LOOP"] = loop
    if loop == "uvloop":
        import asyncio

        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def pytest_report_header(config: pytest.Config) -> str:
    return f"event loop: {config.getoption('--loop')}"


T0 = 1_795_838_763_000_000_000  # 2026-11-28T04:06:03Z in ns, the real-traffic fixture's day


@pytest.fixture
def t0() -> int:
    """A fixed epoch-ns timestamp for literal frames."""
    return T0
