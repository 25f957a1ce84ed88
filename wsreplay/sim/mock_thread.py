"""Blocking twin of :class:`~wsreplay.sim.MockAuthentik`: the mock on its own loop in a thread.

For scripts, the CLI and notebooks (where a loop is already running): every
method blocks until the mock's loop has done the work.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from .._background import ServiceThread
from .http_routes import InstanceState
from .latency import LatencyModel

if TYPE_CHECKING:
    from .mock import MockAuthentik

__all__ = ["MockHandle"]

T = TypeVar("T")


class MockHandle:
    """A running :class:`~wsreplay.sim.MockAuthentik` on a background thread.

    Made by :meth:`MockAuthentik.start_in_thread`. The ``push_*`` methods and
    :meth:`restart` mirror the mock's coroutines but block and return their
    results; :meth:`stop` shuts the loop and the thread down. Use it as a
    context manager to stop it on exit.

    Examples
    --------
    >>> from wsreplay.sim import MockAuthentik
    >>> with MockAuthentik(outposts={"pk": "token"}).start_in_thread() as ak:
    ...     ak.push_trigger_update("pk")
    0
    """

    def __init__(self, mock: MockAuthentik, service: ServiceThread) -> None:
        self.mock = mock
        self._service = service

    @classmethod
    def start(cls, mock: MockAuthentik, *, timeout: float = 10.0) -> MockHandle:
        """Start *mock* on a new thread and wait until it listens."""
        return cls(mock, ServiceThread(mock.start, mock.stop, name="the mock authentik", timeout=timeout))

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self._service.call(coro, timeout)

    # ------------------------------------------------------------------ lifecycle

    def stop(self, timeout: float = 30.0) -> None:
        """Close every connection, stop the mock and join its thread (idempotent)."""
        self._service.stop(timeout)

    def __enter__(self) -> MockHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the mock's thread is alive."""
        return self._service.running

    # ------------------------------------------------------------------ mirrors of the mock

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return self.mock.url

    @property
    def ws_url(self) -> str:
        """``ws://host:port``."""
        return self.mock.ws_url

    @property
    def port(self) -> int:
        """The bound port."""
        return self.mock.port

    @property
    def log(self) -> list[dict[str, Any]]:
        """The mock's :attr:`~wsreplay.sim.MockAuthentik.log` (a snapshot copy)."""
        return list(self.mock.log)

    @property
    def ack_latency(self) -> LatencyModel:
        """The mock's ACK latency model (assign seconds or a :class:`LatencyModel`)."""
        return self.mock.ack_latency

    @ack_latency.setter
    def ack_latency(self, value: float | LatencyModel) -> None:
        self.mock.ack_latency = value

    @property
    def stalled(self) -> bool:
        """Whether ACKs are held back right now."""
        return self.mock.stalled

    def stall(self, seconds: float, *, drop: bool = False) -> None:
        """See :meth:`MockAuthentik.stall`."""
        self.mock.stall(seconds, drop=drop)

    def health(self, pk: str) -> list[InstanceState]:
        """See :meth:`MockAuthentik.health`."""
        return self.mock.health(pk)

    def restart(self, downtime: float = 0.0) -> int:
        """Blocking :meth:`MockAuthentik.restart`."""
        return self._call(self.mock.restart(downtime=downtime))

    def push_trigger_update(self, pk: str) -> int:
        """Blocking :meth:`MockAuthentik.push_trigger_update`."""
        return self._call(self.mock.push_trigger_update(pk))

    def push_session_end(self, session_id: str) -> int:
        """Blocking :meth:`MockAuthentik.push_session_end`."""
        return self._call(self.mock.push_session_end(session_id))

    def push_provider_specific(self, pk: str | None, args: Mapping[str, Any]) -> int:
        """Blocking :meth:`MockAuthentik.push_provider_specific`."""
        return self._call(self.mock.push_provider_specific(pk, args))

    def push_notice(self, message: str, level: str = "info", *, tags: str | None = None) -> int:
        """Blocking :meth:`MockAuthentik.push_notice`."""
        return self._call(self.mock.push_notice(message, level, tags=tags))

    def push_session_authenticated(self) -> int:
        """Blocking :meth:`MockAuthentik.push_session_authenticated`."""
        return self._call(self.mock.push_session_authenticated())

    def push_notification(self, notification_id: str, data: Mapping[str, Any]) -> int:
        """Blocking :meth:`MockAuthentik.push_notification`."""
        return self._call(self.mock.push_notification(notification_id, data))
