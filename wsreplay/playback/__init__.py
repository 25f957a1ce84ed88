"""Replay: captures streamed back to a server, or served as the recorded server.

* :func:`replay` / :func:`replay_async`: one connection per recorded
  connection against a target, timed or lock-step, observed traffic kept as a
  new capture, answers compared by a :class:`Matcher`.
* :class:`ReplayServer` / :func:`serve`: act as the recorded authentik.

The sans-I/O core: :mod:`~wsreplay.playback.script` (what a script holds),
:mod:`~wsreplay.playback.schedule` (building scripts from a capture),
:mod:`~wsreplay.playback.session` (each connection's decisions),
:mod:`~wsreplay.playback.observe` and :mod:`~wsreplay.playback.match` (what was
seen, compared with the capture). The I/O drivers are thin:
:mod:`~wsreplay.playback.client`, :mod:`~wsreplay.playback.server`,
:mod:`~wsreplay.playback.handle`; :mod:`~wsreplay.playback.run` ties the client
side together.
"""

from __future__ import annotations

from .credentials import Credentials
from .handle import ServeHandle, serve
from .match import CheckReport, Matcher, Mismatch, compare
from .result import ReplayResult, assert_replay_matches
from .run import replay, replay_async
from .schedule import build_plan
from .script import ConnectionScript, ReplayPlan
from .served import ServerSession
from .server import ReplayServer
from .session import ClientSession, ReplaySession

__all__ = [
    "replay",
    "replay_async",
    "ReplayResult",
    "assert_replay_matches",
    "Matcher",
    "Mismatch",
    "CheckReport",
    "compare",
    "Credentials",
    "ReplayPlan",
    "ConnectionScript",
    "build_plan",
    "ReplaySession",
    "ClientSession",
    "ServerSession",
    "ReplayServer",
    "ServeHandle",
    "serve",
]
