"""The replay server on a thread of its own: :func:`serve` and the :class:`ServeHandle` it returns.

The blocking twin of :class:`~wsreplay.playback.server.ReplayServer`, for
scripts, notebooks and tests: the server runs on its own loop in a daemon
thread (:class:`~wsreplay._background.ServiceThread`), and the handle stops it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from .._background import ServiceThread
from .script import ReplayPlan
from .server import ReplayServer, ServerStats

__all__ = ["ServeHandle", "serve"]


class ServeHandle:
    """A :class:`ReplayServer` running on its own thread (from :func:`serve`).

    Attributes
    ----------
    server : ReplayServer
    url, ws_url, port
        As on the server.
    """

    def __init__(self, server: ReplayServer) -> None:
        self.server = server
        self._service = ServiceThread(server.start, server.stop, name="the replay server")

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def stats(self) -> ServerStats:
        return self.server.stats

    def frames(self) -> pd.DataFrame:
        """What the server saw so far (needs ``record=True``)."""
        return self.server.frames()

    def stop(self) -> None:
        """Stop serving (connections closed, capture sealed) and join the thread."""
        self._service.stop(timeout=None)

    def __enter__(self) -> ServeHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    capture: str | os.PathLike[str] | pd.DataFrame | ReplayPlan,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    speed: float | str | None = 1.0,
    tokens: str | Mapping[str, str] | None = None,
    endpoint: str | Sequence[str] | None = None,
    outpost: str | Sequence[str] | None = None,
    connection: str | Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    mapping: Mapping[str, str] | Iterable[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    record: bool = False,
) -> ServeHandle:
    """Serve a capture on a thread of its own and return at once (blocking twin of :class:`ReplayServer`).

    The parameters are those of :class:`ReplayServer`; call ``.stop()`` on the
    handle (or use it as a context manager) to stop.

    Returns
    -------
    ServeHandle

    Examples
    --------
    Serving a capture directory (skipped as a doctest: it listens on a port until stopped):

    >>> with wsreplay.serve("capture/", port=0) as handle:  # doctest: +SKIP
    ...     print(handle.url)
    """
    server = ReplayServer(
        capture,
        host=host,
        port=port,
        speed=speed,
        tokens=tokens,
        endpoint=endpoint,
        outpost=outpost,
        connection=connection,
        start=start,
        end=end,
        mapping=mapping,
        out=out,
        record=record,
    )
    return ServeHandle(server)
