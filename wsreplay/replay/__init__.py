"""Replay: captures streamed back to a server, or served as the recorded server.

* :func:`replay` / :func:`replay_async`: one connection per recorded
  connection against a target, timed or lock-step, observed traffic kept as a
  new capture, answers compared by a :class:`Matcher`.
* :class:`ReplayServer` / :func:`serve`: act as the recorded authentik.

The sans-I/O core is :mod:`~wsreplay.replay.schedule` (scripts) and
:mod:`~wsreplay.replay.match` (comparison); the rest are thin drivers.
"""

from __future__ import annotations

from .client import replay, replay_async
from .credentials import Credentials
from .match import CheckReport, Matcher, Mismatch, compare
from .result import ReplayResult, assert_replay_matches
from .schedule import ConnectionScript, ReplayPlan, build_plan
from .server import ReplayServer, ServeHandle, serve

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
    "ReplayServer",
    "ServeHandle",
    "serve",
]
