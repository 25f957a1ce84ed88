"""The public surface and the layering rules."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

import pytest
from tests_support import absolute_imports

import wsreplay

PACKAGE = Path(wsreplay.__file__).parent

#: Core modules: no sockets, no event loops, no plotting, no clocks.
CORE = [
    "protocol",
    "schema",
    "events",
    "summary",
    "timeutil",
    "address",
    "analysis",
    "playback/script.py",
    "playback/schedule.py",
    "playback/session.py",
    "playback/served.py",
    "playback/assemble.py",
    "playback/recording.py",
    "playback/observe.py",
    "playback/match.py",
]
FORBIDDEN = {"asyncio", "websockets", "matplotlib", "socket", "time"}


def test_all_names_are_importable_and_unique():
    assert len(wsreplay.__all__) == len(set(wsreplay.__all__))
    for name in wsreplay.__all__:
        assert hasattr(wsreplay, name), name


def test_every_module_declares_all():
    for info in pkgutil.walk_packages(wsreplay.__path__, "wsreplay."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        assert hasattr(module, "__all__") or info.name.startswith("wsreplay.cli."), info.name


def _modules() -> list[str]:
    return [
        info.name for info in pkgutil.walk_packages(wsreplay.__path__, "wsreplay.") if info.name != "wsreplay.__main__"
    ]


@pytest.mark.parametrize("name", _modules())
def test_no_public_name_shadows_a_module(name):
    # the rule: a package never exports a name that is also the name of one of its modules (a
    # function lives in a module named for its subsystem: replay() in wsreplay.playback), so that
    # `import wsreplay.a.b` and then `wsreplay.a.b.c` always reach the module
    module = importlib.import_module(name)
    parent, _, leaf = name.rpartition(".")
    assert getattr(sys.modules[parent], leaf) is module, f"{parent}.{leaf} is not the module {name}"


def _core_files():
    for entry in CORE:
        path = PACKAGE / entry
        if path.is_dir():
            yield from path.rglob("*.py")
        elif path.with_suffix(".py").exists():
            yield path.with_suffix(".py")
        elif path.exists():
            yield path


def test_core_modules_do_no_io():
    for path in _core_files():
        for name in absolute_imports(path):
            assert name.split(".")[0] not in FORBIDDEN, f"{path.relative_to(PACKAGE)} imports {name}"


def test_exception_classes_live_in_one_module():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "exceptions.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                assert not bases & {"Exception", "WSReplayError", "ValueError", "RuntimeError"}, (
                    f"{path.relative_to(PACKAGE)} defines exception {node.name}"
                )


@pytest.mark.parametrize(
    ("blocking", "coroutine"),
    [
        (wsreplay.replay, wsreplay.replay_async),
        (wsreplay.probe, wsreplay.probe_async),
        (wsreplay.serve, wsreplay.ReplayServer),
    ],
)
def test_twins_take_the_same_parameters_written_out(blocking, coroutine):
    # the blocking twin shows its parameters in Jupyter's `?` (no **kwargs) and they are its twin's
    mine = inspect.signature(blocking).parameters
    theirs = inspect.signature(coroutine).parameters
    assert not [p for p in mine.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    assert [(p.name, p.kind, p.default) for p in mine.values()] == [
        (p.name, p.kind, p.default) for p in theirs.values()
    ]
