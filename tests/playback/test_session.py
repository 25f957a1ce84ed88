"""The replay sessions, fed literal frames and times (no socket, no loop, no clock)."""

from __future__ import annotations

import math

import pytest
from replay_support import HELLO, PK

from wsreplay.events import ConnectionLog
from wsreplay.playback.schedule import build_plan
from wsreplay.playback.script import ConnectionScript, Send
from wsreplay.playback.served import ServerSession, answers_by_kind
from wsreplay.playback.session import ClientSession, Close, Reply, Wait, close_code
from wsreplay.protocol import encode_ack, encode_trigger_update
from wsreplay.schema import rows_to_table, table_to_frames

MS = 1_000_000
ACK = encode_ack()
T = 1000.0  # the driver's monotonic time at which the replayed connection opened


def client(script: ConnectionScript, *, speed: float = 1.0, lockstep: bool = False) -> ClientSession:
    return ClientSession(script, t_open=T, speed=speed, lockstep=lockstep, reply_timeout=5.0)


def one_script(rows) -> ConnectionScript:
    return build_plan(table_to_frames(rows_to_table(rows))).scripts[0]


def drive_sends(session: ClientSession, now: float) -> list[Send]:
    """Send whatever the session sends at *now* without waiting."""
    sent = []
    while isinstance(action := session.next_action(now), Send):
        sent.append(action)
        session.sent_frame()
    return sent


# ------------------------------------------------------------------ client: timing


def test_timed_sends_wait_for_their_recorded_offsets_divided_by_speed(capture):
    session = client(build_plan(capture).script("conn-a"), speed=2.0)
    assert session.next_action(T) == Wait(T + 0.005)  # HELLO at +10 ms, at speed 2
    first = session.next_action(T + 0.005)
    assert isinstance(first, Send) and first.index == 0 and first.data == HELLO
    assert session.scheduled(first) == pytest.approx(0.005)
    session.sent_frame()
    assert session.next_action(T + 0.006) == Wait(T + 0.05)
    assert isinstance(session.next_action(T + 0.05), Send)


def test_full_speed_sends_everything_at_once_then_waits_for_the_replies_and_the_end(capture):
    session = client(build_plan(capture).script("conn-a"), speed=math.inf)
    assert [s.index for s in drive_sends(session, T)] == [0, 1]
    assert math.isnan(session.scheduled(session.script.sends[0]))
    # both recorded ACKs are replies to expect, for at most reply_timeout
    assert session.next_action(T) == Wait(T + 5.0, replies=2)
    assert session.receive(ACK) and session.receive(ACK)
    assert not session.receive(encode_trigger_update())  # a push, not a reply
    # then the recorded end (at full speed: now), and the peer's recorded close
    close = session.next_action(T + 0.001)
    assert close == Close(1000)
    session.closing_with(close)
    assert session.connection_closed(1000) == ("to_server", 1000)
    assert session.finish() == ("ok", "")


def test_a_server_frame_before_the_peer_spoke_is_no_reply(capture):
    session = client(build_plan(capture).script("conn-a"), speed=math.inf)
    assert not session.receive(ACK)
    assert session.replies == 0


def test_the_last_replies_are_awaited_at_most_reply_timeout(capture):
    session = client(build_plan(capture).script("conn-a"), speed=math.inf)
    drive_sends(session, T)
    assert session.next_action(T + 1.0) == Wait(T + 5.0, replies=2)
    # none came: the session moves on to the recorded end and closes as the peer did
    assert session.next_action(T + 5.0) == Close(1000)


# ------------------------------------------------------------------ client: lock-step


def test_lockstep_waits_for_the_replies_seen_before_each_frame(capture):
    session = client(build_plan(capture).script("conn-a"), speed=math.inf, lockstep=True)
    assert [s.index for s in drive_sends(session, T)] == [0]  # frame 1 waits for the first ACK
    # the wait began when frame 1 was due (at T): woken early, the deadline stays
    assert session.next_action(T + 0.1) == Wait(T + 5.0, replies=1)
    session.receive(ACK)
    assert [s.index for s in drive_sends(session, T + 0.3)] == [1]
    assert session.notes == []


def test_lockstep_sends_anyway_after_reply_timeout_and_says_so(capture):
    session = client(build_plan(capture).script("conn-a"), speed=math.inf, lockstep=True)
    drive_sends(session, T)
    assert isinstance(session.next_action(T), Wait)
    assert [s.index for s in drive_sends(session, T + 5.0)] == [1]
    assert session.notes == [
        "connection conn-a: lock-step waited 5 s for reply #1 before frame #2, got 0; sent it anyway"
    ]


def test_a_closed_connection_has_nothing_left_to_do(capture):
    session = client(build_plan(capture).script("conn-a"), speed=math.inf, lockstep=True)
    drive_sends(session, T)
    session.connection_closed(1006)
    assert session.next_action(T + 10.0) is None


# ------------------------------------------------------------------ client: endings and outcomes


def test_the_peer_close_code_is_replayed_and_codes_one_may_not_send_become_1000(t0):
    for recorded, sent in ((1001, Close(1001)), (1005, Close(1000)), (None, Close(1006)), (4003, Close(4003))):
        log = ConnectionLog("cap", "/ws/client/", conn_id="c")
        rows = [log.open(t0), log.close(t0 + 2 * MS, "to_server", code=recorded)]
        session = client(one_script(rows))
        assert session.next_action(T + 0.001) == Wait(T + 0.002, closing=True)
        assert session.next_action(T + 0.002) == sent
    assert close_code(1015) == close_code(999) == 1000 and Close(1006).abort


def test_a_recorded_server_close_is_awaited_then_the_replay_closes_and_notes_it(t0):
    log = ConnectionLog("cap", f"/ws/outpost/{PK}/", conn_id="r")
    rows = [
        log.open(t0),
        log.message(t0 + 1 * MS, "to_server", HELLO),
        log.message(t0 + 2 * MS, "to_peer", encode_ack()),
        log.close(t0 + 10 * MS, "to_peer", code=1012),
    ]
    session = client(one_script(rows), speed=math.inf)
    drive_sends(session, T)
    session.receive(ACK)
    assert session.next_action(T) == Wait(T + 5.0, closing=True)  # the close at +10 ms, scaled to 0, + timeout
    assert session.next_action(T + 5.0) == Close(1000)
    assert session.notes == [
        "connection r: the capture has the server closing it (1012); it stayed open, the replay closed it"
    ]


def test_a_server_close_as_recorded_is_the_closed_outcome(t0):
    log = ConnectionLog("cap", f"/ws/outpost/{PK}/", conn_id="r")
    rows = [log.open(t0), log.message(t0 + 1 * MS, "to_server", HELLO), log.close(t0 + 10 * MS, "to_peer", code=1012)]
    session = client(one_script(rows), speed=math.inf)
    drive_sends(session, T)
    assert session.connection_closed(1012) == ("to_peer", 1012)
    assert session.finish() == ("closed", "the target closed it with 1012, as recorded (1012)")


def test_a_drop_after_the_recorded_malformed_frame_is_as_recorded_and_one_before_is_not(capture):
    script = build_plan(capture).script("conn-b")  # HELLO, then a frame authentik dropped the connection for
    early = client(script, speed=math.inf)
    early.next_action(T)
    early.sent_frame()
    early.connection_closed(None)
    assert early.finish() == ("dropped", "the target dropped the connection (1006) after 1 of 2 frame(s)")
    provoked = client(script, speed=math.inf)
    drive_sends(provoked, T)
    assert provoked.connection_closed(1006) == ("to_peer", 1006)
    assert provoked.finish()[0] == "closed"


def test_a_target_closing_a_connection_the_capture_kept_is_reported(capture):
    session = client(build_plan(capture).script("conn-a"), speed=math.inf)
    drive_sends(session, T)
    session.connection_closed(1011)
    assert session.finish() == (
        "closed",
        "the target closed the connection with 1011 after 2 of 2 frame(s) before the recorded end",
    )


def test_closing_ourselves_is_recorded_with_our_code_and_the_outcome_is_ok(capture):
    session = client(build_plan(capture).script("conn-a"), speed=math.inf)
    session.closing_with(Close(1000))
    assert session.connection_closed(None) == ("to_server", 1000)
    assert session.finish() == ("ok", "")


# ------------------------------------------------------------------ server


def test_the_server_answers_a_recorded_frame_after_its_recorded_latency(capture):
    plan = build_plan(capture)
    session = ServerSession(plan.script("conn-a"), t_open=T, speed=1.0, by_kind=answers_by_kind(plan, 1.0))
    how, actions = session.receive(T + 0.01, HELLO)
    assert how == "script"
    assert actions == [Reply(pytest.approx(T + 0.013), "text", encode_ack())]


def test_the_server_drops_the_connection_after_the_recorded_malformed_frame(capture):
    plan = build_plan(capture)
    session = ServerSession(plan.script("conn-b"), t_open=T, speed=1.0, by_kind=answers_by_kind(plan, 1.0))
    session.receive(T, HELLO)
    how, actions = session.receive(T + 1.0, "this is not json")
    assert how == "script" and actions == [Close(1006, at=T + 1.0)]
    session.closing_with(actions[0])
    assert session.connection_closed(1006) == ("to_peer", 1006)


def test_frames_the_script_lacks_are_answered_by_analogy_or_not_at_all(capture):
    plan = build_plan(capture)
    by_kind = answers_by_kind(plan, math.inf)
    session = ServerSession(plan.script("conn-a"), t_open=T, speed=math.inf, by_kind=by_kind)
    for _ in range(2):
        assert session.receive(T, HELLO)[0] == "script"
    how, actions = session.receive(T, HELLO)  # a third HELLO: the capture has two on this connection
    assert how == "analogy" and actions == [Reply(T, "text", encode_ack())]
    assert session.receive(T, b"\x00binary")[0] == "none"
    assert session.connection_closed(1000) == ("to_server", 1000)


def test_the_server_pushes_at_recorded_offsets_and_closes_as_recorded(capture, t0):
    plan = build_plan(capture)
    session = ServerSession(plan.script("conn-a"), t_open=T, speed=2.0, by_kind={})
    assert session.schedule() == [Reply(pytest.approx(T + 0.075), "text", encode_trigger_update())]
    log = ConnectionLog("cap", f"/ws/outpost/{PK}/", conn_id="r")
    rows = [log.open(t0), log.close(t0 + 10 * MS, "to_peer", code=1012, reason="restart")]
    restart = one_script(rows)
    assert ServerSession(restart, t_open=T, speed=1.0, by_kind={}).schedule() == [
        Close(1012, "restart", pytest.approx(T + 0.01))
    ]
    # at full speed a recorded close would come before the peer said anything: it is left out
    assert ServerSession(restart, t_open=T, speed=math.inf, by_kind={}).schedule() == []
