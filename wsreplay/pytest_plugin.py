"""pytest plugin: serve captures and replay them in tests.

Installed with wsreplay (entry point ``pytest11``); its options are in the
``wsreplay`` group of ``pytest --help``. Fixtures (override any of them in a
``conftest.py``):

``wsreplay_capture``
    The capture under test: the path given by ``@pytest.mark.wsreplay("path")``
    (relative to the test file), or whatever an override returns (a path or a
    frames DataFrame).
``wsreplay_server``
    That capture served as the recorded authentik on a free 127.0.0.1 port
    (a :class:`~wsreplay.playback.handle.ServeHandle`: ``.url``, ``.frames()``,
    ``.stats``). Keyword arguments of the marker go to the server
    (``speed=``, ``tokens=``...) when they are its own.
``wsreplay_target``
    The server to replay against: ``--wsreplay-target URL`` (or the
    ``wsreplay_target`` ini value); ``None`` when unset.
``wsreplay_replay``
    A function ``wsreplay_replay(capture=None, target=None, **kwargs)`` that
    replays (default: the marked capture, against ``wsreplay_target``, at
    ``--wsreplay-speed``, default ``max``) and returns a
    :class:`~wsreplay.playback.result.ReplayResult` (``.frames`` is the
    observed traffic as a DataFrame). Pair it with
    :func:`wsreplay.assert_replay_matches`, which fails with the diff.

By default nothing here touches the network beyond 127.0.0.1 / localhost: a
target elsewhere is refused unless ``--wsreplay-allow-remote`` is given.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

__all__ = [
    "pytest_addoption",
    "pytest_configure",
    "wsreplay_capture",
    "wsreplay_server",
    "wsreplay_target",
    "wsreplay_replay",
    "is_local",
]

_SERVER_OPTIONS = frozenset({"speed", "tokens", "endpoint", "outpost", "connection", "start", "end", "mapping", "out"})


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wsreplay", "wsreplay: serve and replay captured authentik WebSocket traffic")
    group.addoption(
        "--wsreplay-target",
        metavar="URL",
        default=None,
        help="server the wsreplay_replay fixture replays captures against (default: none)",
    )
    group.addoption(
        "--wsreplay-speed",
        metavar="X",
        default=None,
        help="replay speed of the wsreplay_replay fixture: 0.1 to 1000 or 'max' (default: max)",
    )
    group.addoption(
        "--wsreplay-allow-remote",
        action="store_true",
        default=False,
        help="let wsreplay fixtures talk to hosts other than 127.0.0.1/localhost",
    )
    parser.addini("wsreplay_target", "default for --wsreplay-target", default=None)
    parser.addini("wsreplay_speed", "default for --wsreplay-speed", default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "wsreplay(capture, **options): the capture the wsreplay fixtures serve and replay, and options for its server",
    )


def is_local(url: str) -> bool:
    """Whether a URL points at this machine (127.0.0.0/8, ::1 or localhost)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(f"--wsreplay-{name}")
    if value is None:
        value = config.getini(f"wsreplay_{name}") or None
    return value


@pytest.fixture
def wsreplay_capture(request: pytest.FixtureRequest) -> Any:
    """The capture of ``@pytest.mark.wsreplay("path")`` (override to return a path or DataFrame)."""
    marker = request.node.get_closest_marker("wsreplay")
    if marker is None or not marker.args:
        pytest.fail(
            "no capture for the wsreplay fixtures: mark the test with @pytest.mark.wsreplay('path/to/capture') "
            "or override the wsreplay_capture fixture",
            pytrace=False,
        )
    path = Path(os.fspath(marker.args[0]))
    if not path.is_absolute():
        path = Path(str(request.node.path)).parent / path
    return path


@pytest.fixture
def wsreplay_server(request: pytest.FixtureRequest, wsreplay_capture: Any) -> Iterator[Any]:
    """The capture served as the recorded authentik on a free 127.0.0.1 port."""
    from .playback.handle import serve

    marker = request.node.get_closest_marker("wsreplay")
    options = {k: v for k, v in (marker.kwargs if marker else {}).items() if k in _SERVER_OPTIONS}
    handle = serve(wsreplay_capture, host="127.0.0.1", port=0, record=True, **options)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def wsreplay_target(request: pytest.FixtureRequest) -> str | None:
    """The server to replay against (``--wsreplay-target``), or ``None``."""
    value = _option(request.config, "target")
    return str(value) if value else None


@pytest.fixture
def wsreplay_replay(request: pytest.FixtureRequest, wsreplay_target: str | None) -> Callable[..., Any]:
    """A function that replays a capture and returns the :class:`~wsreplay.playback.result.ReplayResult`."""
    from .playback.run import replay

    allow_remote = bool(request.config.getoption("--wsreplay-allow-remote"))
    speed = _option(request.config, "speed") or "max"

    def run(capture: Any = None, target: str | None = None, **kwargs: Any) -> Any:
        if capture is None:
            capture = request.getfixturevalue("wsreplay_capture")
        target = target or wsreplay_target
        if not target:
            pytest.fail(
                "no replay target: pass --wsreplay-target URL, give target=..., or replay against the "
                "wsreplay_server fixture (target=wsreplay_server.url)",
                pytrace=False,
            )
        if not allow_remote and not is_local(target):
            pytest.fail(
                f"wsreplay fixtures only talk to 127.0.0.1/localhost by default; {target} is elsewhere "
                "(pass --wsreplay-allow-remote to allow it)",
                pytrace=False,
            )
        kwargs.setdefault("speed", None if kwargs.get("lockstep") else speed)
        kwargs.setdefault("require_tokens", False)
        kwargs.setdefault("progress", False)
        return replay(capture, target, **kwargs)

    return run
