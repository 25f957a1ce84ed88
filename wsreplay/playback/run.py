"""Replaying a capture against a server: :func:`replay_async` and its blocking twin :func:`replay`.

Checks the arguments, builds the plan (:mod:`~wsreplay.playback.schedule`), runs
the client driver (:mod:`~wsreplay.playback.client`), and assembles the
:class:`~wsreplay.playback.result.ReplayResult` (the observed traffic as a
capture, one outcome per recorded connection, the send timing, and the check
against the capture by :mod:`~wsreplay.playback.match`). :func:`replay` runs the
coroutine on a loop of its own in a background thread, so it works the same
in a script and inside Jupyter's running loop.
"""

from __future__ import annotations

import gc
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from .._background import run_in_thread
from ..events import new_id
from ..exceptions import ConfigurationError
from ..schema import table_to_frames
from ..store import CaptureWriter, load
from .client import ClientRun
from .credentials import Credentials
from .match import Matcher
from .plan import CaptureLike, plan_of
from .recording import recordings_table
from .result import ReplayResult
from .schedule import parse_speed
from .script import ReplayPlan

__all__ = ["replay", "replay_async", "target_base"]


def target_base(target: str) -> str:
    """The ``ws://`` / ``wss://`` base URL of a target given as ``http(s)://`` or ``ws(s)://``.

    Examples
    --------
    >>> target_base("http://127.0.0.1:9000/")
    'ws://127.0.0.1:9000'
    """
    parts = urlsplit(target)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ConfigurationError(
            f"target {target!r} is not a URL like http://host:port or ws://host:port (the authentik base URL)"
        )
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


async def replay_async(
    capture: CaptureLike,
    target: str,
    *,
    speed: float | str | None = None,
    lockstep: bool = False,
    endpoint: str | Sequence[str] | None = None,
    outpost: str | Sequence[str] | None = None,
    connection: str | Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    mapping: Mapping[str, str] | Iterable[str] | None = None,
    credentials: Credentials | None = None,
    tokens: Mapping[str, str] | None = None,
    tokens_file: str | os.PathLike[str] | None = None,
    require_tokens: bool = True,
    out: str | os.PathLike[str] | None = None,
    check: bool | Matcher = False,
    reply_timeout: float = 5.0,
    open_timeout: float = 10.0,
    progress: bool | None = None,
    max_connections: int | None = None,
    stop_on_unreachable: bool = True,
    freeze_gc: bool = False,
) -> ReplayResult:
    """Replay a capture against a server (coroutine; see :func:`replay` for the blocking twin).

    Parameters
    ----------
    capture : path, DataFrame or ReplayPlan
        A capture directory or file, frames from :func:`wsreplay.load`, or a
        plan from :func:`~wsreplay.playback.schedule.build_plan`.
    target : str
        Base URL of the server (``http(s)://`` or ``ws(s)://``); recorded paths
        and query strings are appended to it.
    speed : float or "max", optional
        Divide recorded offsets by this (0.1 to 1000); ``"max"`` sends as fast
        as possible. Default 1, or ``"max"`` in lock-step mode.
    lockstep : bool
        Before each frame, wait (up to *reply_timeout*) until the replies the
        capture saw before it have arrived.
    endpoint, outpost, connection, start, end
        Filters: endpoints, recorded outpost pks, connection ids (or unique
        prefixes), and a window on the connections' recorded open.
    mapping : dict or list of "OLD=NEW", optional
        Replay recorded outpost *OLD* as outpost *NEW*.
    credentials : Credentials, optional
        Default: ``AUTHENTIK_TOKEN`` / ``AUTHENTIK_SESSION`` from the
        environment, plus *tokens_file* and *tokens* (outpost pk -> token).
    require_tokens : bool
        Refuse to start when an outpost connection the capture saw accepted
        has no token (instead of being refused by the target).
    out : path, optional
        Also write the observed traffic as a capture directory here.
    check : bool or Matcher
        Compare the answers with the capture (``result.check``).
    reply_timeout : float
        Seconds to wait for an expected reply or close.
    open_timeout : float
        Seconds allowed for each opening handshake.
    progress : bool, optional
        Show a progress bar (tqdm); by default only for long replays.
    max_connections : int, optional
        At most this many connections open at once.
    stop_on_unreachable : bool
        Stop opening connections once one could not reach the target.
    freeze_gc : bool
        Opt-in: while the replay runs, keep the objects that existed before it
        out of the garbage collector's full collections (``gc.freeze()``,
        undone afterwards; skipped if something else froze objects already).
        Long collections over a large capture can delay sends by tens of ms;
        but freezing acts on the whole process, so it is off unless asked for
        (``wsreplay replay`` asks for it: the process is its own).

    Returns
    -------
    ReplayResult

    Raises
    ------
    ConfigurationError
        Bad target URL, speed, filter, mapping or missing token.
    CaptureError
        The capture cannot be read.
    """
    speed_f = parse_speed("max" if speed is None and lockstep else speed)
    if reply_timeout <= 0 or open_timeout <= 0:
        raise ConfigurationError("reply_timeout and open_timeout must be positive seconds")
    base = target_base(target)
    plan = plan_of(
        capture, endpoint=endpoint, outpost=outpost, connection=connection, start=start, end=end, mapping=mapping
    )
    creds = credentials or Credentials.from_env(tokens_file, tokens=tokens)
    if require_tokens:
        missing = sorted(
            {
                s.outpost_uuid or ""
                for s in plan.scripts
                if s.endpoint == "outpost" and not s.refused and not creds.token_for(s.outpost_uuid, s.recorded_outpost)
            }
        )
        if missing:
            raise ConfigurationError(
                f"no token for outpost {missing[0]}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                + ": set AUTHENTIK_TOKEN or give a token file of <pk>=<token> lines"
            )
    capture_id = new_id()
    if out is not None and Path(out).is_dir() and any(p.suffix in (".parquet", ".arrows") for p in Path(out).iterdir()):
        raise ConfigurationError(f"{out} already holds a capture; write the replay into a new directory")
    writer = CaptureWriter(out, capture_id=capture_id) if out is not None else None
    state = ClientRun(
        plan,
        base,
        creds,
        speed=speed_f,
        lockstep=lockstep,
        reply_timeout=reply_timeout,
        open_timeout=open_timeout,
        writer=writer,
        capture_id=capture_id,
        max_connections=max_connections,
        stop_on_unreachable=stop_on_unreachable,
    )
    long_run = plan.sends >= 10_000 or (speed_f != math.inf and plan.duration_s / speed_f >= 30)
    if progress or (progress is None and long_run):
        from tqdm.auto import tqdm

        state.progress = tqdm(total=plan.sends, unit="frame", desc="replay", mininterval=0.5)
    # Objects that exist before the replay (the capture, the scripts) are moved out of the garbage
    # collector's reach while it runs: full collections over them stall the loop for tens of ms.
    froze = freeze_gc and gc.get_freeze_count() == 0
    if froze:
        gc.freeze()
    started = state.clock.now()
    try:
        await state.run()
    finally:
        if froze:
            gc.unfreeze()
        if state.progress is not None:
            state.progress.close()
        if writer is not None:
            writer.close()
    return _result(state, plan, out, check, state.clock.now() - started)


_CONNECTION_COLUMNS = [
    "conn_id",
    "replay_conn_id",
    "path",
    "recorded_status",
    "status",
    "sent",
    "to_send",
    "received",
    "recorded_received",
    "close_code",
    "closed_by",
    "outcome",
    "as_recorded",
    "detail",
]


def _result(state: ClientRun, plan: ReplayPlan, out: Any, check: bool | Matcher, elapsed: float) -> ReplayResult:
    if out is None:
        table = recordings_table(state.recordings.values())
        table = table.sort_by([("ts", "ascending"), ("conn_id", "ascending"), ("seq", "ascending")])
        frames = table_to_frames(table)
    else:
        frames = load(out)
        if len(frames):
            frames = frames.sort_values(["ts", "conn_id", "seq"], kind="stable").reset_index(drop=True)
    records = []
    for script in plan.scripts:
        rec = state.recordings.get(script.conn_id)
        outcome, detail = state.outcomes.get(script.conn_id, ("not_replayed", "the replay stopped before its turn"))
        status = sent = received = close_code = closed_by = None
        if rec is None:
            outcome, detail = "not_replayed", state.aborted or detail
        else:
            status, sent, received, close_code, closed_by = rec.summary()
        recorded = script.close
        as_recorded = (
            (outcome == "refused" and script.refused and status == script.status)
            or (outcome == "ok" and not script.refused)
            or (outcome in ("dropped", "closed") and recorded is not None and recorded.by == "server")
        )
        records.append(
            (
                script.conn_id,
                rec.log.conn_id if rec is not None else None,
                script.path,
                script.status,
                status,
                sent or 0,
                len(script.sends),
                received or 0,
                len(script.received),
                close_code,
                closed_by,
                outcome,
                bool(as_recorded),
                detail,
            )
        )
    connections = pd.DataFrame.from_records(records, columns=_CONNECTION_COLUMNS)
    for col in ("recorded_status", "status", "close_code"):
        connections[col] = connections[col].astype("Int32")
    conn, frame, scheduled, actual = zip(*state.timing, strict=True) if state.timing else ((), (), (), ())
    timing = pd.DataFrame(
        {
            "conn_id": np.array(conn, dtype=object),
            "frame": np.array(frame, dtype=np.int64),
            "scheduled_s": np.array(scheduled, dtype=np.float64),
            "actual_s": np.array(actual, dtype=np.float64),
        }
    )
    timing["error_s"] = timing["actual_s"] - timing["scheduled_s"]
    result = ReplayResult(
        frames=frames,
        connections=connections,
        timing=timing,
        plan=plan,
        capture_id=state.capture_id,
        recordings=state.recordings,
        out=Path(out) if out is not None else None,
        aborted=state.aborted,
        notes=[*plan.notes, *state.notes],
        speed=state.speed,
        lockstep=state.lockstep,
        elapsed_s=elapsed,
    )
    if check:
        result.check = result.compare(check if isinstance(check, Matcher) else None)
    return result


def replay(
    capture: CaptureLike,
    target: str,
    *,
    speed: float | str | None = None,
    lockstep: bool = False,
    endpoint: str | Sequence[str] | None = None,
    outpost: str | Sequence[str] | None = None,
    connection: str | Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    mapping: Mapping[str, str] | Iterable[str] | None = None,
    credentials: Credentials | None = None,
    tokens: Mapping[str, str] | None = None,
    tokens_file: str | os.PathLike[str] | None = None,
    require_tokens: bool = True,
    out: str | os.PathLike[str] | None = None,
    check: bool | Matcher = False,
    reply_timeout: float = 5.0,
    open_timeout: float = 10.0,
    progress: bool | None = None,
    max_connections: int | None = None,
    stop_on_unreachable: bool = True,
    freeze_gc: bool = False,
) -> ReplayResult:
    """Replay a capture against a server and wait for the result (blocking twin of :func:`replay_async`).

    Runs the replay on a loop of its own in a background thread, so it works
    the same from a script and from a Jupyter cell (whose loop keeps running
    untouched). The parameters are those of :func:`replay_async`.

    Returns
    -------
    ReplayResult

    Examples
    --------
    Against a running authentik (skipped when the examples run as doctests: they need that server):

    >>> result = wsreplay.replay("capture/", "http://127.0.0.1:9000", speed=10, check=True)  # doctest: +SKIP
    >>> print(result.check)  # doctest: +SKIP
    replay check passed: 12 connection(s), 240 recorded server frame(s) matched (frame names of the server's replies)
    """
    coro = replay_async(
        capture,
        target,
        speed=speed,
        lockstep=lockstep,
        endpoint=endpoint,
        outpost=outpost,
        connection=connection,
        start=start,
        end=end,
        mapping=mapping,
        credentials=credentials,
        tokens=tokens,
        tokens_file=tokens_file,
        require_tokens=require_tokens,
        out=out,
        check=check,
        reply_timeout=reply_timeout,
        open_timeout=open_timeout,
        progress=progress,
        max_connections=max_connections,
        stop_on_unreachable=stop_on_unreachable,
        freeze_gc=freeze_gc,
    )
    return run_in_thread(coro, name="wsreplay-replay")
