"""The one background loop of the blocking twins: run_in_thread and ServiceThread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from wsreplay._background import ServiceThread, run_in_thread
from wsreplay.exceptions import ConfigurationError


async def _where() -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name


async def _fail() -> None:
    raise ConfigurationError("told to fail")


def test_run_in_thread_returns_the_result_from_a_thread_of_its_own():
    assert run_in_thread(_where(), name="wsreplay-test") == "wsreplay-test"
    assert not [t for t in threading.enumerate() if t.name == "wsreplay-test"]


def test_run_in_thread_raises_what_the_coroutine_raised():
    with pytest.raises(ConfigurationError, match="told to fail"):
        run_in_thread(_fail(), name="wsreplay-test")


def test_run_in_thread_works_while_the_callers_loop_runs():
    # what a Jupyter cell does: a blocking call from inside a running loop, which stays untouched
    async def cell() -> str:
        loop = asyncio.get_running_loop()
        name = run_in_thread(_where(), name="wsreplay-test")
        assert asyncio.get_running_loop() is loop
        return name

    assert asyncio.run(cell()) == "wsreplay-test"


def test_a_stopped_service_refuses_calls():
    async def nothing() -> None:
        return None

    service = ServiceThread(nothing, nothing, name="wsreplay-test")
    service.stop()
    coro = _where()
    with pytest.raises(ConfigurationError, match="not running"):
        service.call(coro)
