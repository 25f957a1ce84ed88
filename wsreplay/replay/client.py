"""Replaying a capture against a server: the thin asyncio driver.

:func:`replay_async` opens one WebSocket per recorded connection, to the same
path and query string on the target, at its recorded offset (divided by
*speed*), sends the recorded peer frames at their recorded offsets from that
connection's open (timed mode) or each as soon as the replies the capture saw
before it have arrived (lock-step), ends the connection the way the capture
did, and records everything it sees as a new capture. :func:`replay` is its
blocking twin (it also works inside Jupyter's running loop).

The scripts come from :mod:`wsreplay.replay.schedule`, the comparison from
:mod:`wsreplay.replay.match`; this module only does the I/O.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from time import monotonic_ns
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from websockets.proxy import get_proxy
from websockets.uri import parse_uri

from .. import __version__
from ..events import ConnectionLog, DecodeCache, new_id
from ..exceptions import ConfigurationError
from ..schema import rows_to_table, table_to_frames
from ..store import CaptureWriter, load
from ._blocking import run_blocking
from ._clock import Clock, Timer
from .credentials import Credentials
from .match import Matcher, ObservedConnection, Observer
from .result import ReplayResult
from .schedule import ConnectionScript, ReplayPlan, build_plan, is_reply, parse_speed, scale

__all__ = ["replay", "replay_async", "target_base"]

_UA = f"wsreplay/{__version__}"
CaptureLike = str | os.PathLike[str] | pd.DataFrame | ReplayPlan


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


def _plan(capture: CaptureLike, filters: dict[str, Any]) -> ReplayPlan:
    if isinstance(capture, ReplayPlan):
        if any(v is not None for v in filters.values()):
            raise ConfigurationError("filters and mapping apply when building a plan: pass a capture, not a plan")
        return capture
    frames = capture if isinstance(capture, pd.DataFrame) else load(capture)
    return build_plan(frames, **filters)


class _Replay:
    """State of one replay run (one per call of :func:`replay_async`)."""

    def __init__(
        self,
        plan: ReplayPlan,
        base: str,
        credentials: Credentials,
        *,
        speed: float,
        lockstep: bool,
        reply_timeout: float,
        open_timeout: float,
        writer: CaptureWriter | None,
        capture_id: str,
        max_connections: int | None,
        stop_on_unreachable: bool,
    ) -> None:
        self.plan = plan
        self.base = base
        self.credentials = credentials
        self.speed = speed
        self.lockstep = lockstep
        self.reply_timeout = reply_timeout
        self.open_timeout = open_timeout
        self.writer = writer
        self.capture_id = capture_id
        self.stop_on_unreachable = stop_on_unreachable
        self.clock = Clock()
        self.timer = Timer()
        self.limit = asyncio.Semaphore(max_connections) if max_connections else None
        #: rows kept in memory for ``result.frames`` (``None`` when they go to a capture directory)
        self.rows: list[dict[str, Any]] | None = None if writer is not None else []
        self.observers: dict[str, Observer] = {}
        self.outcomes: dict[str, tuple[str, str]] = {}
        self.timing: list[tuple[str, int, float, float]] = []
        self.notes: list[str] = []
        self.aborted: str | None = None
        self.progress: Any = None
        self.peer = urlsplit(base).netloc
        # the environment's proxy settings, read once (websockets reads them on every connect)
        self.proxy: str | None = get_proxy(parse_uri(base + "/"))
        self.cache: DecodeCache = {}

    # ------------------------------------------------------------------ rows

    def _write(self, script: ConnectionScript, row: dict[str, Any]) -> dict[str, Any]:
        observer = self.observers.get(script.conn_id)
        if observer is None:
            observer = self.observers[script.conn_id] = Observer()
        observer.add(row)
        if self.rows is not None:
            self.rows.append(row)
        if self.writer is not None:
            self.writer.write(row)
        return row

    # ------------------------------------------------------------------ run

    async def run(self) -> None:
        t0 = self.clock.now()
        tasks: set[asyncio.Task[None]] = set()
        try:
            for script in self.plan.scripts:
                if self.aborted:
                    break
                await self.timer.sleep_until(t0 + scale(script.open_offset_ns, self.speed))
                if self.limit is not None:
                    await self.limit.acquire()
                if self.aborted:
                    if self.limit is not None:
                        self.limit.release()
                    break
                task = asyncio.create_task(self._connection(script))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await self.timer.aclose()

    async def _connection(self, script: ConnectionScript) -> None:
        try:
            await self._connection_inner(script)
        finally:
            if self.limit is not None:
                self.limit.release()

    async def _connection_inner(self, script: ConnectionScript) -> None:
        log = ConnectionLog(self.capture_id, script.path, script.query, cache=self.cache)
        url = self.base + script.target
        headers = []
        if not (script.status is not None and 400 <= script.status < 500):
            # a handshake the capture saw refused for its credentials is replayed without any
            headers = self.credentials.headers(script.endpoint, script.outpost_uuid, script.recorded_outpost)
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                user_agent_header=script.user_agent or _UA,
                compression=None,
                proxy=self.proxy,
                open_timeout=self.open_timeout,
                ping_interval=None,
                max_size=None,
                close_timeout=self.reply_timeout,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            self._write(script, log.error(self.clock.ns(), f"handshake refused: HTTP {status}", status=status))
            self.outcomes[script.conn_id] = ("refused", f"the target refused the handshake with HTTP {status}")
            return
        except Exception as exc:  # refused TCP, timeout, a broken handshake: all 'could not connect'
            reason = _describe_connect_error(exc)
            self._write(script, log.error(self.clock.ns(), f"could not connect: {reason}"))
            self.outcomes[script.conn_id] = ("unreachable", f"could not connect to {self.peer}: {reason}")
            if isinstance(exc, OSError) and exc.errno == errno.EMFILE:
                self.aborted = "too many open files: raise `ulimit -n` or limit max_connections"
            elif self.stop_on_unreachable and isinstance(exc, (OSError, TimeoutError, InvalidURI)):
                self.aborted = f"target {self.base} is unreachable ({reason})"
            return
        self._write(
            script,
            log.open(self.clock.ns(), status=101, user_agent=script.user_agent or _UA, peer=self.peer),
        )
        conn = _Conn(self, script, log, ws)
        await conn.run()


def _describe_connect_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out during the opening handshake"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class _Conn:
    """One open replayed connection: sender, receiver, and the recorded ending."""

    def __init__(self, run: _Replay, script: ConnectionScript, log: ConnectionLog, ws: ClientConnection) -> None:
        self.r = run
        self.script = script
        self.log = log
        self.ws = ws
        self.t_open = run.clock.now()
        self.sent = 0
        self.replies = 0
        self.reply_event = asyncio.Event()
        self.self_closing = False
        self.close_code: int | None = None

    def at(self, offset_ns: int) -> float:
        return self.t_open + scale(offset_ns, self.r.speed)

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            await self._release()

    async def _release(self) -> None:
        """Wait for the TCP connection to be gone (or cut it): nothing outlives the replay."""
        try:
            await asyncio.wait_for(self.ws.wait_closed(), self.r.reply_timeout)
        except TimeoutError:
            self._abort()
        except asyncio.CancelledError:
            self._abort()
            raise

    def _abort(self) -> None:
        transport = self.ws.transport
        if transport is not None:
            transport.abort()

    async def _run(self) -> None:
        recv = asyncio.create_task(self._receive())
        send = asyncio.create_task(self._send_all())
        done, _ = await asyncio.wait({recv, send}, return_when=asyncio.FIRST_COMPLETED)
        script = self.script
        if send not in done:  # the target ended the connection first
            send.cancel()
            try:
                await send
            except asyncio.CancelledError:
                pass
            self._note_server_close()
            return
        send.result()
        if not recv.done():
            await self._finish(recv)
        await recv
        self._note_server_close()
        if script.conn_id not in self.r.outcomes:
            self.r.outcomes[script.conn_id] = ("ok", "")

    def _note_server_close(self) -> None:
        script = self.script
        if self.self_closing or script.conn_id in self.r.outcomes:
            return
        code = self.ws.close_code or 1006
        rec = script.close
        provoked = rec is not None and rec.reply_to is not None and self.sent > rec.reply_to
        pushed = rec is not None and rec.reply_to is None and self.sent >= len(script.sends)
        if rec is not None and rec.by == "server" and (provoked or pushed):
            detail = f"the target closed it with {code}, as recorded ({rec.code or 1006})"
            self.r.outcomes[script.conn_id] = ("closed", detail)
            return
        left = len(script.sends) - self.sent
        what = "dropped the connection (1006)" if code == 1006 else f"closed the connection with {code}"
        detail = f"the target {what} after {self.sent} of {len(script.sends)} frame(s)"
        if left <= 0:
            detail += " before the recorded end"
        self.r.outcomes[script.conn_id] = ("dropped" if code == 1006 else "closed", detail)

    async def _receive(self) -> None:
        ws, log, script = self.ws, self.log, self.script
        try:
            async for message in ws:
                row = self.r._write(script, log.message(self.r.clock.ns(), "to_peer", message))
                if is_reply(script.endpoint, row.get("instruction_name"), after_peer_frame=self.sent > 0):
                    self.replies += 1
                    self.reply_event.set()
        except ConnectionClosed:
            pass
        finally:
            code = ws.close_code if ws.close_code is not None else 1006
            reason = ws.close_reason or None
            direction = "to_server" if self.self_closing else "to_peer"
            if self.self_closing and self.close_code is not None:
                code = self.close_code
            self.r._write(script, log.close(self.r.clock.ns(), direction, code=code, reason=reason))
            self.reply_event.set()

    async def _wait_replies(self, count: int, timeout: float) -> bool:
        deadline = self.r.clock.now() + timeout
        while self.replies < count:
            remaining = deadline - self.r.clock.now()
            if remaining <= 0 or self.ws.close_code is not None:
                return self.replies >= count
            self.reply_event.clear()
            try:
                await asyncio.wait_for(self.reply_event.wait(), remaining)
            except TimeoutError:
                pass
        return True

    async def _send_all(self) -> None:
        r, script, ws, log = self.r, self.script, self.ws, self.log
        timed = r.speed != math.inf
        timing, rows, writer, conn_id = r.timing, r.rows, r.writer, script.conn_id
        observe_row = r.observers[conn_id].add  # the open row created it
        wall0 = r.clock.wall0_minus_mono0  # capture ts = wall0 + monotonic ns
        for frame in script.sends:
            if r.lockstep and self.replies < frame.replies_before:
                if not await self._wait_replies(frame.replies_before, r.reply_timeout):
                    if ws.close_code is not None:
                        return
                    r.notes.append(
                        f"connection {script.short_id}: lock-step waited {r.reply_timeout:g} s for reply "
                        f"#{frame.replies_before} before frame #{frame.index + 1}, got {self.replies}; sent it anyway"
                    )
            scheduled = math.nan
            if timed:
                scheduled = scale(frame.offset_ns, r.speed)
                await r.timer.sleep_until(self.t_open + scheduled)
            mono = monotonic_ns()
            try:
                await ws.send(frame.data, text=frame.opcode == "text")
            except (ConnectionClosed, OSError):
                return
            self.sent += 1
            timing.append((conn_id, frame.index, scheduled, mono / 1e9 - self.t_open))
            row = log.message(wall0 + mono, "to_server", frame.data, opcode=frame.opcode)
            observe_row(row)
            if rows is not None:
                rows.append(row)
            if writer is not None:
                writer.write(row)
            if r.progress is not None:
                r.progress.update(1)

    async def _until(self, deadline: float, recv: asyncio.Task[None]) -> None:
        remaining = deadline - self.r.clock.now()
        if remaining > 0 and not recv.done():
            await asyncio.wait({recv}, timeout=remaining)

    async def _finish(self, recv: asyncio.Task[None]) -> None:
        """End the connection the way the capture did."""
        r, script = self.r, self.script
        await self._wait_replies(len(script.replies), r.reply_timeout)
        rec = script.close
        if rec is not None and rec.by == "server":
            await self._until(self.at(rec.offset_ns) + r.reply_timeout, recv)
            if not recv.done():
                r.notes.append(
                    f"connection {script.short_id}: the capture has the server closing it "
                    f"({rec.code or 1006}); it stayed open, the replay closed it"
                )
                await self._close(1000)
            return
        end = rec.offset_ns if rec is not None else script.end_offset_ns
        await self._until(self.at(end), recv)
        if recv.done():
            return
        code = rec.code if rec is not None else 1000
        await self._close(code)

    async def _close(self, code: int | None) -> None:
        self.self_closing = True
        if code is None or code == 1006:
            self.close_code = 1006
            transport = self.ws.transport
            if transport is not None:
                transport.abort()
            return
        if code == 1005 or not (1000 <= code <= 4999) or code in (1004, 1015):
            code = 1000
        self.close_code = code
        try:
            await self.ws.close(code)
        except Exception:  # pragma: no cover - a broken socket while closing
            self.ws.transport.abort()


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
    freeze_gc: bool = True,
) -> ReplayResult:
    """Replay a capture against a server (coroutine; see :func:`replay` for the blocking twin).

    Parameters
    ----------
    capture : path, DataFrame or ReplayPlan
        A capture directory or file, frames from :func:`wsreplay.load`, or a
        plan from :func:`~wsreplay.replay.schedule.build_plan`.
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
        While the replay runs, keep the objects that existed before it out of
        the garbage collector's full collections (``gc.freeze()``, undone
        afterwards; skipped if something else froze objects already). Long
        collections over a large capture would delay sends by tens of ms.

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
    filters = {
        "endpoint": endpoint,
        "outpost": outpost,
        "connection": connection,
        "start": start,
        "end": end,
        "mapping": mapping,
    }
    plan = _plan(capture, filters)
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
    state = _Replay(
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


def _result(state: _Replay, plan: ReplayPlan, out: Any, check: bool | Matcher, elapsed: float) -> ReplayResult:
    if state.rows is not None:
        frames = table_to_frames(rows_to_table(state.rows))
    else:
        frames = load(out)
    if len(frames):
        frames = frames.sort_values(["ts", "conn_id", "seq"], kind="stable").reset_index(drop=True)
    observed: dict[str, ObservedConnection] = {
        cid: observer.obs for cid, observer in state.observers.items() if observer.obs is not None
    }
    records = []
    for script in plan.scripts:
        obs = observed.get(script.conn_id)
        outcome, detail = state.outcomes.get(script.conn_id, ("not_replayed", "the replay stopped before its turn"))
        if obs is None:
            outcome, detail = "not_replayed", state.aborted or detail
        rec = script.close
        as_recorded = (
            (outcome == "refused" and script.refused and obs is not None and obs.status == script.status)
            or (outcome == "ok" and not script.refused)
            or (outcome in ("dropped", "closed") and rec is not None and rec.by == "server")
        )
        records.append(
            {
                "conn_id": script.conn_id,
                "replay_conn_id": obs.conn_id if obs else None,
                "path": script.path,
                "recorded_status": script.status,
                "status": obs.status if obs else None,
                "sent": obs.sent if obs else 0,
                "to_send": len(script.sends),
                "received": len(obs.received) if obs else 0,
                "recorded_received": len(script.received),
                "close_code": obs.close.code if obs and obs.close else None,
                "closed_by": obs.close.by if obs and obs.close else None,
                "outcome": outcome,
                "as_recorded": bool(as_recorded),
                "detail": detail,
            }
        )
    connections = pd.DataFrame.from_records(
        records,
        columns=[
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
        ],
    )
    for col in ("recorded_status", "status", "close_code"):
        connections[col] = connections[col].astype("Int32")
    timing = pd.DataFrame(state.timing, columns=["conn_id", "frame", "scheduled_s", "actual_s"])
    timing["error_s"] = timing["actual_s"] - timing["scheduled_s"]
    result = ReplayResult(
        frames=frames,
        connections=connections,
        timing=timing,
        plan=plan,
        capture_id=state.capture_id,
        observed=observed,
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


def replay(capture: CaptureLike, target: str, **kwargs: Any) -> ReplayResult:
    """Replay a capture against a server and wait for the result (blocking twin of :func:`replay_async`).

    Works from scripts and from a Jupyter cell (whose loop is already
    running: the replay then runs on its own loop in a worker thread). Takes
    the same arguments as :func:`replay_async`.

    Examples
    --------
    >>> result = wsreplay.replay("capture/", "http://127.0.0.1:9000", speed=10, check=True)  # doctest: +SKIP
    >>> print(result.check)  # doctest: +SKIP
    replay check passed: 12 connection(s), 240 recorded server frame(s) matched (frame names of the server's replies)
    """
    return run_blocking(replay_async(capture, target, **kwargs))
