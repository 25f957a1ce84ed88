"""Matchers and the readable diff, on literal frames (no I/O)."""

from __future__ import annotations

import pytest
from replay_support import HELLO, MS, PK

from wsreplay.events import ConnectionLog
from wsreplay.exceptions import ConfigurationError
from wsreplay.playback.match import Matcher, compare
from wsreplay.playback.observe import observe
from wsreplay.playback.schedule import build_plan
from wsreplay.protocol import encode_ack, encode_hello, encode_instruction, encode_notice, encode_session_end


def replayed(t0, frames, *, path=f"/ws/outpost/{PK}/", status=101, close=("to_server", 1000), conn_id="r"):
    """Rows of a replayed connection: (direction, payload) pairs, 1 ms apart."""
    log = ConnectionLog("replay", path, conn_id=conn_id)
    if status != 101:
        return observe([log.error(t0, f"handshake refused: HTTP {status}", status=status)])
    rows = [log.open(t0, status=101)]
    for k, (direction, payload) in enumerate(frames, 1):
        rows.append(log.message(t0 + k * MS, direction, payload))
    if close is not None:
        rows.append(log.close(t0 + 99 * MS, close[0], code=close[1]))
    return observe(rows)


def as_recorded_a(t0, ack=None, second_ack=None):
    ack, second_ack = ack or encode_ack(), second_ack or encode_ack()
    return replayed(t0, [("to_server", HELLO), ("to_peer", ack), ("to_server", HELLO), ("to_peer", second_ack)])


def test_same_answers_pass(capture, t0):
    plan = build_plan(capture, connection="conn-a")
    report = compare(plan, {"conn-a": as_recorded_a(t0)})
    assert report.ok and report.frames == 2 and report.connections == 1
    assert "check passed" in str(report)


def test_a_different_reply_names_connection_frame_and_difference(capture, t0):
    plan = build_plan(capture, connection="conn-a")
    report = compare(plan, {"conn-a": as_recorded_a(t0, second_ack=encode_session_end("s"))})
    assert not report.ok and report.differing == 1
    (m,) = report.mismatches
    assert (m.conn_id, m.kind, m.frame, m.seq) == ("conn-a", "frame", 2, 4)
    text = str(report)
    assert "connection conn-a" in text and "frame #2" in text and "reply to peer frame #2 HELLO" in text
    assert "expected ACK (reply to peer frame #2 HELLO, recorded at +0.103 s), got SESSION_END at +0.004 s" in text
    assert "which the capture does not have" in text
    # compared as server events too, it is a frame-for-frame difference
    (m,) = compare(
        plan, {"conn-a": as_recorded_a(t0, second_ack=encode_session_end("s"))}, Matcher(server_events=True)
    ).mismatches[:1]
    assert m.kind == "frame" and m.detail.startswith("expected ACK, got SESSION_END")


def test_missing_and_extra_replies(capture, t0):
    plan = build_plan(capture, connection="conn-a")
    missing = replayed(t0, [("to_server", HELLO), ("to_peer", encode_ack()), ("to_server", HELLO)])
    (m,) = compare(plan, {"conn-a": missing}).mismatches
    assert m.kind == "missing" and "expected ACK" in m.detail and "got nothing" in m.detail
    extra = replayed(
        t0,
        [("to_server", HELLO), ("to_peer", encode_ack()), ("to_server", HELLO), ("to_peer", encode_ack())] * 1
        + [("to_peer", encode_ack())],
    )
    (m,) = compare(plan, {"conn-a": extra}).mismatches
    assert m.kind == "extra" and "got ACK" in m.detail and "does not have" in m.detail


def test_pushes_are_compared_only_with_server_events(capture, t0):
    plan = build_plan(capture, connection="conn-a")
    obs = as_recorded_a(t0)
    assert compare(plan, {"conn-a": obs}).ok
    report = compare(plan, {"conn-a": obs}, Matcher(server_events=True))
    (m,) = report.mismatches
    assert m.kind == "missing" and "TRIGGER_UPDATE" in m.detail and "server push" in m.detail


def test_payload_matcher_shows_the_differing_field(capture, t0):
    plan = build_plan(capture, connection="conn-a")
    odd_ack = encode_instruction(0, {"extra": 1})
    obs = as_recorded_a(t0, second_ack=odd_ack)
    assert compare(plan, {"conn-a": obs}).ok  # names are the same
    (m,) = compare(plan, {"conn-a": obs}, Matcher(compare="payload")).mismatches
    assert "args.extra: unexpected 1" in m.detail
    assert compare(plan, {"conn-a": obs}, Matcher(ignore_fields=("args.extra",))).ok
    # spacing and key order do not matter in payload comparison
    assert compare(plan, {"conn-a": as_recorded_a(t0, ack='{"args":{},"instruction":0}')}, Matcher("payload")).ok


def test_the_abrupt_close_after_a_malformed_frame_is_expected(capture, t0):
    plan = build_plan(capture, connection="conn-b")
    frames = [("to_server", HELLO), ("to_peer", encode_ack()), ("to_server", "this is not json")]
    assert compare(plan, {"conn-b": replayed(t0, frames, close=("to_peer", 1006))}).ok
    (m,) = compare(plan, {"conn-b": replayed(t0, frames, close=("to_server", 1000))}).mismatches
    assert m.kind == "close" and "without a close frame (1006) after peer frame #2 <malformed>" in m.detail
    assert "it stayed open" in m.detail
    assert compare(plan, {"conn-b": replayed(t0, frames, close=None)}, Matcher(close=False)).ok


def test_a_target_that_drops_a_connection_is_a_difference(capture, t0):
    plan = build_plan(capture, connection="conn-a")
    obs = replayed(t0, [("to_server", HELLO), ("to_peer", encode_ack())], close=("to_peer", 1006))
    kinds = [m.kind for m in compare(plan, {"conn-a": obs}).mismatches]
    assert kinds == ["missing", "close"]
    assert "dropped the connection (1006)" in str(compare(plan, {"conn-a": obs}))


def test_handshake_outcomes(capture, t0):
    plan = build_plan(capture, connection="conn-a")
    (m,) = compare(plan, {"conn-a": replayed(t0, [], status=403)}).mismatches
    assert m.kind == "handshake" and m.detail == "expected accepted, got refused with HTTP 403"
    assert compare(plan, {"conn-a": replayed(t0, [], status=403)}, Matcher(handshake=False)).ok


def test_not_replayed_connections_and_the_report_frame(capture, t0):
    plan = build_plan(capture)
    report = compare(plan, {"conn-a": as_recorded_a(t0)})
    assert {m.conn_id for m in report.mismatches} == {"conn-b", "conn-c"}
    df = report.to_frame()
    assert list(df.columns) == ["conn_id", "replay_conn_id", "path", "kind", "frame", "seq", "detail"]
    assert set(df["kind"]) == {"not_replayed"}
    assert "showing the first 1" in report.format(limit=1)


def test_client_notices_are_pushes(t0):
    log = ConnectionLog("cap", "/ws/client/", conn_id="c")
    rows = [
        log.open(t0),
        log.message(t0 + MS, "to_peer", encode_notice("x")),
        log.close(t0 + 2 * MS, "to_server", code=1000),
    ]
    from wsreplay.schema import rows_to_table, table_to_frames

    plan = build_plan(table_to_frames(rows_to_table(rows)))
    nothing = replayed(t0, [], path="/ws/client/")
    assert compare(plan, {"c": nothing}).ok
    assert not compare(plan, {"c": nothing}, Matcher(server_events=True)).ok


def test_bad_matcher():
    with pytest.raises(ConfigurationError, match="compare"):
        Matcher(compare="bytes")  # type: ignore[arg-type]
    assert Matcher(ignore_fields="args.uuid").ignore_fields == ("args.uuid",)  # type: ignore[arg-type]


def test_hello_payload_frames_compare_by_value(t0):
    assert Matcher("payload").key(observe([_row(t0, encode_hello({"uuid": "a"}))]).received[0]) is not None


def _row(t0, payload):
    log = ConnectionLog("x", f"/ws/outpost/{PK}/")
    return log.message(t0, "to_peer", payload)


def test_replies_to_frames_the_recorded_peer_did_not_wait_for_are_not_differences(t0):
    log = ConnectionLog("cap", f"/ws/outpost/{PK}/", conn_id="c")
    rows = [
        log.open(t0),
        log.message(t0 + MS, "to_server", HELLO),
        log.message(t0 + 2 * MS, "to_peer", encode_ack()),
        log.message(t0 + 3 * MS, "to_server", HELLO),  # the outpost closed before its ACK came
        log.close(t0 + 3 * MS, "to_server", code=1000),
    ]
    from wsreplay.schema import rows_to_table, table_to_frames

    plan = build_plan(table_to_frames(rows_to_table(rows)))
    frames = [("to_server", HELLO), ("to_peer", encode_ack()), ("to_server", HELLO), ("to_peer", encode_ack())]
    assert compare(plan, {"c": replayed(t0, frames)}).ok
    two_extra = [*frames, ("to_peer", encode_ack())]
    kinds = [m.kind for m in compare(plan, {"c": replayed(t0, two_extra)}).mismatches]
    assert kinds == ["extra", "extra"]  # more than the unanswered tail: both count
