"""Comparing what a server answered with what a capture recorded, without I/O.

A :class:`Matcher` says what "the same" means: by default the sequence of
frame names (instruction names on ``/ws/outpost/``, message types on
``/ws/client/``) of the server's *replies* per connection, the handshake
outcome, and the abrupt close (1006) authentik answers a malformed frame with.
``Matcher(compare="payload")`` compares whole payloads (JSON compared as
values), ``ignore_fields=("args.uuid",)`` leaves fields out (and implies
payload comparison), ``server_events=True`` also compares what the server did
on its own (pushes such as TRIGGER_UPDATE, a 1012 restart, a 5xx refusal).

:func:`compare` returns a :class:`CheckReport`; its text is a readable diff
naming the connection, the frame and the difference.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import pandas as pd

from ..exceptions import ConfigurationError
from .observe import ObservedConnection, ObservedFrame
from .script import ConnectionScript, Expected, ReplayPlan

__all__ = ["Matcher", "Mismatch", "CheckReport", "compare"]

_POSITIONAL_ABOVE: Final = 20_000
_ABRUPT: Final = frozenset({1006, 1005})


def _drop(value: Any, path: Sequence[str]) -> Any:
    if not path or not isinstance(value, dict):
        return value
    head, rest = path[0], path[1:]
    if head not in value:
        return value
    out = dict(value)
    if rest:
        out[head] = _drop(out[head], rest)
    else:
        del out[head]
    return out


def _json_diff(a: Any, b: Any, prefix: str = "", limit: int = 3) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in a:
                out.append(f"{where}: unexpected {json.dumps(b[key])}")
            elif key not in b:
                out.append(f"{where}: missing (expected {json.dumps(a[key])})")
            elif a[key] != b[key]:
                out.extend(_json_diff(a[key], b[key], where, limit))
            if len(out) >= limit:
                break
        return out[:limit]
    return [f"{prefix or 'value'}: expected {json.dumps(a)}, got {json.dumps(b)}"]


@dataclass(frozen=True)
class Matcher:
    """What counts as the same answer.

    Parameters
    ----------
    compare : {"names", "payload"}
        ``names`` compares frame names (instruction names, message types);
        ``payload`` compares whole payloads (JSON as values, key order and
        spacing ignored).
    ignore_fields : tuple of str
        Dotted JSON paths left out of payload comparison (``"args.uuid"``);
        giving any implies ``compare="payload"``.
    server_events : bool
        Also compare what the server did on its own: pushes (TRIGGER_UPDATE,
        notices, ...), closes it initiated (1012 restarts) and refusals for
        being unavailable (5xx).
    handshake : bool
        Compare the handshake outcome (accepted, or refused with a 4xx status).
    close : bool
        Expect the abrupt close the capture saw after a malformed frame, and
        flag a target that closes or drops a connection the capture kept.

    Examples
    --------
    >>> Matcher(ignore_fields=("args.uuid",)).compare
    'payload'
    """

    compare: Literal["names", "payload"] = "names"
    ignore_fields: tuple[str, ...] = ()
    server_events: bool = False
    handshake: bool = True
    close: bool = True

    def __post_init__(self) -> None:
        if self.compare not in ("names", "payload"):
            raise ConfigurationError(f"matcher compare={self.compare!r}: use 'names' or 'payload'")
        fields = (self.ignore_fields,) if isinstance(self.ignore_fields, str) else self.ignore_fields
        object.__setattr__(self, "ignore_fields", tuple(fields))
        if self.ignore_fields:
            object.__setattr__(self, "compare", "payload")

    def _value(self, opcode: str, data: str | bytes) -> Any:
        if opcode == "binary" or isinstance(data, bytes):
            return bytes(data) if isinstance(data, (bytes, bytearray)) else str(data).encode()
        try:
            value = json.loads(data)
        except ValueError:
            return data
        for path in self.ignore_fields:
            value = _drop(value, path.split("."))
        return value

    def key(self, frame: Expected | ObservedFrame) -> Hashable:
        """The value frames are compared by."""
        if self.compare == "names":
            return frame.label
        value = self._value(frame.opcode, frame.data)
        if isinstance(value, (dict, list)):
            return json.dumps(value, sort_keys=True)
        return value if isinstance(value, Hashable) else repr(value)

    def explain(self, expected: Expected, got: ObservedFrame) -> str:
        """One line saying how two frames differ."""
        if self.compare == "names" or expected.label != got.label:
            return f"expected {expected.label}, got {got.label}"
        a, b = self._value(expected.opcode, expected.data), self._value(got.opcode, got.data)
        if isinstance(a, (dict, list)) and isinstance(b, (dict, list)):
            return f"{expected.label}: " + "; ".join(_json_diff(a, b))
        return f"expected {_short(expected.data)}, got {_short(got.data)}"

    @property
    def description(self) -> str:
        """What this matcher compares, in words."""
        what = "frame names" if self.compare == "names" else "payloads"
        if self.ignore_fields:
            what += f" (ignoring {', '.join(self.ignore_fields)})"
        scope = "replies and server events" if self.server_events else "replies"
        return f"{what} of the server's {scope}"


def _short(data: str | bytes, limit: int = 80) -> str:
    text = repr(data) if isinstance(data, bytes) else json.dumps(data)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Mismatch:
    """One difference between the capture and the replay.

    Attributes
    ----------
    conn_id : str
        Recorded connection id.
    replay_conn_id : str or None
        The replay's connection id.
    path : str
        Request path.
    kind : str
        ``frame`` (a different frame), ``missing`` (recorded, not received),
        ``extra`` (received, not recorded), ``handshake``, ``close``, ``not_replayed``.
    frame : int or None
        1-based number of the frame among the compared server frames.
    seq : int or None
        ``seq`` of the recorded frame in the capture.
    detail : str
        The difference, in words.
    """

    conn_id: str
    replay_conn_id: str | None
    path: str
    kind: str
    frame: int | None
    seq: int | None
    detail: str

    def __str__(self) -> str:
        where = f"frame #{self.frame}" if self.frame is not None else self.kind
        seq = f", recorded seq {self.seq}" if self.seq is not None else ""
        return f"connection {self.conn_id[:8]} {self.path} {where}{seq}: {self.detail}"


@dataclass
class CheckReport:
    """The result of :func:`compare`.

    Attributes
    ----------
    mismatches : list of Mismatch
    connections : int
        Connections compared.
    differing : int
        Connections with at least one mismatch.
    frames : int
        Recorded server frames compared.
    matcher : Matcher
    """

    mismatches: list[Mismatch]
    connections: int
    differing: int
    frames: int
    matcher: Matcher

    @property
    def ok(self) -> bool:
        """No mismatch."""
        return not self.mismatches

    def __bool__(self) -> bool:
        return self.ok

    def format(self, limit: int = 10) -> str:
        """The readable diff of the first *limit* mismatches, grouped by connection."""
        if self.ok:
            return (
                f"replay check passed: {self.connections} connection(s), {self.frames} recorded server frame(s) "
                f"matched ({self.matcher.description})"
            )
        shown = self.mismatches[:limit]
        more = f"; showing the first {len(shown)}" if len(shown) < len(self.mismatches) else ""
        lines = [
            f"replay check failed: {self.differing} of {self.connections} connection(s) differ, "
            f"{len(self.mismatches)} mismatch(es){more} ({self.matcher.description})"
        ]
        current = None
        for m in shown:
            if m.conn_id != current:
                current = m.conn_id
                replayed = f", replayed as {m.replay_conn_id[:8]}" if m.replay_conn_id else ""
                lines.append(f"  connection {m.conn_id[:8]} {m.path}{replayed}:")
            where = f"frame #{m.frame}" if m.frame is not None else m.kind
            seq = f" (recorded seq {m.seq})" if m.seq is not None else ""
            lines.append(f"    {where}{seq}: {m.detail}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def to_frame(self) -> pd.DataFrame:
        """One row per mismatch: conn_id, replay_conn_id, path, kind, frame, seq, detail."""
        cols = ["conn_id", "replay_conn_id", "path", "kind", "frame", "seq", "detail"]
        return pd.DataFrame([[getattr(m, c) for c in cols] for m in self.mismatches], columns=cols)


def _status_class(status: int | None) -> str:
    if status is None or status == 101:
        return "accepted"
    return f"refused with HTTP {status}"


def _context(script: ConnectionScript, e: Expected) -> str:
    if e.reply and e.answers is not None and e.answers < len(script.sends):
        sent = script.sends[e.answers]
        return f"reply to peer frame #{sent.index + 1} {sent.label}, recorded at +{e.offset_ns / 1e9:.3f} s"
    return f"server push, recorded at +{e.offset_ns / 1e9:.3f} s"


def _compare_frames(script: ConnectionScript, obs: ObservedConnection, matcher: Matcher, add: Any) -> int:
    expected = [e for e in script.received if e.reply or matcher.server_events]
    got = [o for o in obs.received if o.reply or matcher.server_events]
    slack = _unanswered_tail(script)
    surplus = sum(o.reply for o in got) - sum(e.reply for e in expected)
    if 0 < surplus <= slack and got[-surplus:] and all(o.reply for o in got[-surplus:]):
        # the capture's peer closed before the answers to its last frames came; the replay's did not
        got = got[:-surplus]
    a = [matcher.key(e) for e in expected]
    b = [matcher.key(o) for o in got]
    if a == b:
        return len(expected)
    if max(len(a), len(b)) > _POSITIONAL_ABOVE:
        ops = [("replace", 0, len(a), 0, len(b))]
    else:
        ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()  # type: ignore[assignment]
    ended = ""
    if obs.close is not None and obs.close.by == "server":
        ended = f" (the server closed the connection with {obs.close.code or 1006})"
    unrecorded: list[ObservedFrame] = []
    if not matcher.server_events:
        # frames the server pushed that the capture does not have: often what it sent instead of a reply
        # (the latest pushes are taken as the recorded ones)
        budget = Counter(e.label for e in script.received if not e.reply)
        for o in reversed(obs.received):
            if not o.reply:
                if budget[o.label] > 0:
                    budget[o.label] -= 1
                else:
                    unrecorded.append(o)
        unrecorded.reverse()
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            continue
        pairs = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(pairs):
            e, o = expected[i1 + k], got[j1 + k]
            if a[i1 + k] != b[j1 + k]:
                add("frame", i1 + k + 1, e.seq, f"{matcher.explain(e, o)} ({_context(script, e)})")
        for k in range(i1 + pairs, i2):
            e = expected[k]
            if unrecorded:
                o = unrecorded.pop(0)
                got_instead = f"got {o.label} at +{o.offset_ns / 1e9:.3f} s, which the capture does not have"
                add("frame", k + 1, e.seq, f"expected {e.label} ({_context(script, e)}), {got_instead}")
            else:
                add("missing", k + 1, e.seq, f"expected {e.label} ({_context(script, e)}), got nothing{ended}")
        for k in range(j1 + pairs, j2):
            o = got[k]
            add("extra", i2 + 1, None, f"got {o.label} at +{o.offset_ns / 1e9:.3f} s, which the capture does not have")
    return len(expected)


def _unanswered_tail(script: ConnectionScript) -> int:
    """Peer frames at the end of a connection the peer closed before their replies came."""
    if script.endpoint == "client" or (script.close is not None and script.close.by == "server"):
        return 0
    answered = max((e.answers for e in script.received if e.reply and e.answers is not None), default=-1)
    tail = [s for s in script.sends[answered + 1 :] if s.label != "ACK" and not s.malformed]
    return len(tail)


def _compare_close(script: ConnectionScript, obs: ObservedConnection, matcher: Matcher, add: Any) -> None:
    rec, got = script.close, obs.close
    got_by_server = got is not None and got.by == "server"
    if rec is not None and rec.reply_to is not None:
        sent = script.sends[rec.reply_to]
        if not (got_by_server and got is not None and got.abrupt):
            how = "it stayed open" if not got_by_server or got is None else f"it closed with code {got.code}"
            add(
                "close",
                None,
                None,
                f"expected the server to drop the connection without a close frame (1006) after peer frame "
                f"#{sent.index + 1} {sent.label}, as recorded; {how}",
            )
        return
    if rec is not None and rec.by == "server" and matcher.server_events:
        if not got_by_server or got is None or (got.code or 1006) != (rec.code or 1006):
            how = f"closed by the server with {got.code or 1006}" if got_by_server and got else "not closed by it"
            add("close", None, None, f"expected the server to close with {rec.code or 1006} as recorded; {how}")
        return
    if got_by_server and got is not None and not (rec is not None and rec.by == "server"):
        code = got.code or 1006
        what = "dropped the connection (1006)" if got.abrupt else f"closed the connection with {code}"
        reason = f" ({got.reason})" if got.reason else ""
        add(
            "close",
            None,
            None,
            f"the server {what}{reason} at +{got.offset_ns / 1e9:.3f} s; the capture has it open until "
            f"+{script.end_offset_ns / 1e9:.3f} s",
        )


def compare(
    plan: ReplayPlan,
    observed: Mapping[str, ObservedConnection],
    matcher: Matcher | None = None,
) -> CheckReport:
    """Compare a replay's observations with the recorded scripts.

    Parameters
    ----------
    plan : ReplayPlan
        What was replayed.
    observed : mapping
        Recorded conn_id -> :class:`ObservedConnection`.
    matcher : Matcher, optional
        Defaults to ``Matcher()`` (names of the server's replies).

    Returns
    -------
    CheckReport
    """
    matcher = matcher or Matcher()
    mismatches: list[Mismatch] = []
    frames = differing = 0
    for script in plan.scripts:
        obs = observed.get(script.conn_id)
        before = len(mismatches)

        def add(kind: str, frame: int | None, seq: int | None, detail: str, _s: Any = script, _o: Any = obs) -> None:
            mismatches.append(Mismatch(_s.conn_id, _o.conn_id if _o else None, _s.path, kind, frame, seq, detail))

        if obs is None:
            add("not_replayed", None, None, "not replayed (the replay stopped before its turn)")
            differing += 1
            continue
        rec_status = script.status
        comparable_refusal = rec_status is None or rec_status == 101 or rec_status < 500 or matcher.server_events
        if obs.status is None and obs.error:
            add("handshake", None, None, f"could not connect: {obs.error}")
        elif matcher.handshake and comparable_refusal and _status_class(rec_status) != _status_class(obs.status):
            add("handshake", None, None, f"expected {_status_class(rec_status)}, got {_status_class(obs.status)}")
        elif not script.refused and obs.status in (None, 101):
            frames += _compare_frames(script, obs, matcher, add)
            if matcher.close:
                _compare_close(script, obs, matcher, add)
        if len(mismatches) > before:
            differing += 1
    return CheckReport(mismatches, len(plan.scripts), differing, frames, matcher)
