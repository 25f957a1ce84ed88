"""Find Chromium and drive it over the Chrome DevTools Protocol, for tests.

Shared by the test suites that need a real browser (interop's HAR test, the
report's screenshots). Import as ``from browser import ...`` (``tests/`` is on
pytest's ``pythonpath``).

* :func:`find_chromium` looks for a Chromium/Chrome binary (``$CHROMIUM`` first).
* :func:`ensure_chromium` returns it, or, when there is none, fails the test
  under ``CI=true`` (CI must open the pages in a real browser) and elsewhere
  returns ``None`` with the reason in :data:`LAST_REASON`, so callers can
  ``pytest.skip(LAST_REASON)``. Nothing is installed during the test run:
  ``make test`` installs Debian's ``chromium`` first (``tools/peers.sh``).
* :class:`Chromium` launches headless Chromium with a DevTools port on
  127.0.0.1 and :class:`CDP` speaks the protocol over ``websockets``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

__all__ = ["CANDIDATES", "LAST_REASON", "find_chromium", "ensure_chromium", "Chromium", "CDP", "HEADLESS_FLAGS"]

#: Binary names tried, in order, after ``$CHROMIUM``.
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
#: Flags for a quiet, sandbox-free headless browser that talks to nothing but 127.0.0.1.
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--mute-audio",
)
#: Why :func:`ensure_chromium` found no browser (for ``pytest.skip``).
LAST_REASON = ""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary, or ``None``."""
    env = os.environ.get("CHROMIUM")
    if env and Path(env).is_file() and os.access(env, os.X_OK):
        return env
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_chromium() -> str | None:
    """Path of a Chromium binary; without one, fail under ``CI=true``, else ``None`` and :data:`LAST_REASON`."""
    global LAST_REASON
    found = find_chromium()
    if found:
        return found
    LAST_REASON = (
        "no Chromium found ($CHROMIUM, or one of " + ", ".join(CANDIDATES) + " on PATH): "
        "run `make peers` (tools/peers.sh installs Debian's chromium) or set $CHROMIUM"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {LAST_REASON}", pytrace=False)
    return None


class Chromium:
    """A headless Chromium with its DevTools endpoint on 127.0.0.1 (a context manager).

    ``browser.ws_url`` is the browser target's DevTools WebSocket URL.
    """

    def __init__(self, binary: str, *, extra_flags: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.extra_flags = extra_flags
        self.ws_url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._profile: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Chromium:
        self._profile = tempfile.TemporaryDirectory(prefix="wsreplay-chromium-", ignore_cleanup_errors=True)
        profile = Path(self._profile.name)
        args = [
            self.binary,
            *HEADLESS_FLAGS,
            *self.extra_flags,
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode} before opening its DevTools port")
            if port_file.exists():
                lines = port_file.read_text().splitlines()
                if len(lines) >= 2:
                    self.ws_url = f"ws://127.0.0.1:{lines[0].strip()}{lines[1].strip()}"
                    return self
            time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError("chromium did not open its DevTools port within 30 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._profile is not None:
            # Chromium's helper processes can still write into the profile for a moment after the
            # browser exits ("Directory not empty" on a loaded machine): remove it until it is gone.
            for _ in range(50):
                shutil.rmtree(self._profile.name, ignore_errors=True)
                if not os.path.exists(self._profile.name):
                    break
                time.sleep(0.1)
            self._profile.cleanup()


class CDP:
    """A minimal Chrome DevTools Protocol client (flat sessions) over one WebSocket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._changed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, ws_url: str) -> AsyncIterator[CDP]:
        """Connect to a DevTools WebSocket URL."""
        async with connect(ws_url, max_size=None, compression=None, open_timeout=30) as ws:
            cdp = cls(ws)
            try:
                yield cdp
            finally:
                cdp._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await cdp._reader

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] in self._waiting:
                fut = self._waiting.pop(msg["id"])
                if not fut.done():
                    fut.set_result(msg)
            elif "method" in msg:
                self.events.append(msg)
                self._changed.set()

    async def send(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None) -> Any:
        """Call *method*; return its ``result`` (raise ``RuntimeError`` on a protocol error)."""
        ident = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = fut
        msg: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self.ws.send(json.dumps(msg))
        reply = await asyncio.wait_for(fut, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def wait_for(self, predicate: Any, timeout: float = 15.0) -> None:
        """Wait until ``predicate(self.events)`` is true."""
        async with asyncio.timeout(timeout):
            while not predicate(self.events):
                self._changed.clear()
                await self._changed.wait()
