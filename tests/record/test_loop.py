"""Choosing the event loop of ``wsreplay record``: asyncio's own or uvloop."""

from __future__ import annotations

import asyncio

import pytest

from wsreplay.exceptions import ConfigurationError
from wsreplay.record.loop import resolve_loop, run


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_each_choice_runs_on_its_loop():
    pytest.importorskip("uvloop", reason="uvloop comes with the `fast` extra, which the test extra installs")
    assert resolve_loop("auto") == "uvloop"
    assert run(_loop_module(), loop="uvloop").startswith("uvloop")
    assert run(_loop_module(), loop="asyncio").startswith("asyncio")


def test_unknown_loop_is_one_clear_error():
    with pytest.raises(ConfigurationError, match="choose one of auto, asyncio, uvloop"):
        resolve_loop("trio")
