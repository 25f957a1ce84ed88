"""Replay scripts built from literal frames (no I/O)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from wsreplay.events import ConnectionLog
from wsreplay.exceptions import ConfigurationError
from wsreplay.playback.schedule import build_plan, parse_mapping, parse_speed, scale
from wsreplay.playback.script import frame_label
from wsreplay.protocol import encode_ack, encode_hello
from wsreplay.schema import rows_to_table, table_to_frames

MS = 1_000_000
PK = "1ee03a64-69e4-4f1e-9f06-35cc8e6de56a"


def frames_of(rows):
    return table_to_frames(rows_to_table(rows))


def test_scripts_hold_sends_replies_pushes_and_the_close(capture):
    plan = build_plan(capture)
    assert [s.conn_id for s in plan.scripts] == ["conn-a", "conn-c", "conn-b"]  # by recorded open
    a = plan.script("conn-a")
    assert a.target == f"/ws/outpost/{PK}/?instance_uuid=inst-1&attempt=0"
    assert a.user_agent == "goauthentik.io/outpost/2023.10.0"
    assert [(s.label, s.offset_ns, s.replies_before) for s in a.sends] == [
        ("HELLO", 10 * MS, 0),
        ("HELLO", 100 * MS, 1),
    ]
    assert [(e.label, e.reply, e.answers, e.latency_ns) for e in a.received] == [
        ("ACK", True, 0, 3 * MS),
        ("ACK", True, 1, 3 * MS),
        ("TRIGGER_UPDATE", False, None, None),
    ]
    assert a.close is not None and (a.close.by, a.close.code, a.close.offset_ns) == ("peer", 1000, 200 * MS)
    b = plan.script("conn-b")
    assert b.open_offset_ns == 50 * MS
    assert b.sends[1].malformed and b.sends[1].label == "<malformed>"
    assert b.close is not None and b.close.abrupt and b.close.reply_to == 1
    c = plan.script("conn-c")
    assert c.sends == () and c.pushes[0].label == "message"
    assert plan.sends == 4 and plan.duration_s == pytest.approx(0.2)
    assert plan.notes == ()


def test_acks_answer_unanswered_frames_first_in_first_out(t0):
    log = ConnectionLog("cap", f"/ws/outpost/{PK}/", conn_id="c")
    rows = [
        log.open(t0),
        log.message(t0 + 1 * MS, "to_server", encode_hello({"uuid": "i"})),
        log.message(t0 + 2 * MS, "to_server", encode_hello({"uuid": "i"})),
        log.message(t0 + 5 * MS, "to_peer", encode_ack()),
        log.message(t0 + 6 * MS, "to_peer", encode_ack()),
        log.close(t0 + 9 * MS, "to_server", code=1000),
    ]
    script = build_plan(frames_of(rows)).scripts[0]
    assert [(e.answers, e.latency_ns) for e in script.replies] == [(0, 4 * MS), (1, 4 * MS)]
    assert [s.replies_before for s in script.sends] == [0, 0]


def test_binary_and_invalid_utf8_frames_are_sent_as_recorded(t0):
    log = ConnectionLog("cap", f"/ws/outpost/{PK}/", conn_id="c")
    rows = [
        log.open(t0),
        log.message(t0 + 1, "to_server", b"\x00\x01binary"),
        log.message(t0 + 2, "to_server", b"\xff\xfe not utf-8", opcode="text"),
        log.close(t0 + 3, "to_peer", code=1006),
    ]
    frames = frames_of(rows)
    assert frames["parse_error"].notna().sum() == 2
    sends = build_plan(frames).scripts[0].sends
    assert [(s.opcode, s.data, s.label, s.malformed) for s in sends] == [
        ("binary", b"\x00\x01binary", "<binary>", True),
        ("text", b"\xff\xfe not utf-8", "<malformed>", True),
    ]


def test_cut_connections_and_missing_open_rows_are_noted(t0):
    log = ConnectionLog("cap", f"/ws/outpost/{PK}/", conn_id="cut")
    log.seq = 5  # the capture started while the connection was already open
    rows = [log.message(t0, "to_server", encode_hello({"uuid": "i"})), log.message(t0 + MS, "to_peer", encode_ack())]
    plan = build_plan(frames_of(rows))
    script = plan.scripts[0]
    assert script.close is None and script.end_offset_ns == MS
    assert any("no open row" in n for n in script.notes)
    assert any("no close in the capture" in n for n in plan.notes)


def test_refused_handshakes_are_kept_as_refusals(t0):
    log = ConnectionLog("cap", f"/ws/outpost/{PK}/", conn_id="r")
    plan = build_plan(frames_of([log.error(t0, "handshake refused", status=403)]))
    script = plan.scripts[0]
    assert script.refused and script.status == 403 and script.close is None and script.notes == ()


def test_filters(capture, t0):
    assert [s.conn_id for s in build_plan(capture, endpoint="client").scripts] == ["conn-c"]
    assert {s.conn_id for s in build_plan(capture, outpost=PK).scripts} == {"conn-a", "conn-b"}
    assert [s.conn_id for s in build_plan(capture, connection="conn-b").scripts] == ["conn-b"]
    window = build_plan(capture, start=pd.Timestamp(t0 + 15 * MS, tz="UTC"), end=pd.Timestamp(t0 + 60 * MS, tz="UTC"))
    assert [s.conn_id for s in window.scripts] == ["conn-c", "conn-b"]
    assert window.scripts[0].open_offset_ns == 0  # offsets start at the first selected open


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outpost": "nope"}, "outpost nope is not in the capture"),
        ({"connection": "conn-"}, "ambiguous"),
        ({"connection": "zzz"}, "connection zzz is not in the capture"),
        ({"endpoint": "browser"}, "not one of outpost, client, other"),
        ({"endpoint": "client", "outpost": PK}, "no connection of the capture matches"),
        ({"mapping": ["unknown=new"]}, "outpost unknown is not among the replayed connections"),
        ({"start": "yesterday-ish"}, "is not a time"),
    ],
)
def test_bad_filters_say_what_is_wrong(capture, kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        build_plan(capture, **kwargs)


def test_mapping_rewrites_the_outpost_path(capture):
    plan = build_plan(capture, mapping=[f"{PK}=new-pk"])
    a = plan.script("conn-a")
    assert (a.path, a.outpost_uuid, a.recorded_outpost) == ("/ws/outpost/new-pk/", "new-pk", PK)
    assert plan.outposts == ["new-pk"]


@pytest.mark.parametrize("bad", [["nonsense"], ["a=b/c"], ["a=b", "a=c"], ["=x"]])
def test_bad_mappings(bad):
    with pytest.raises(ConfigurationError, match="--map"):
        parse_mapping(bad)


def test_speed():
    assert parse_speed("max") == math.inf and parse_speed(None) == 1.0 and parse_speed("0.5") == 0.5
    assert scale(2_000_000_000, 4.0) == 0.5 and scale(5, math.inf) == 0.0
    for bad in ("0.01", "5000", "fast"):
        with pytest.raises(ConfigurationError, match="speed"):
            parse_speed(bad)


def test_frame_labels():
    assert frame_label("outpost", "text", "ACK", None, None) == "ACK"
    assert frame_label("client", "text", None, "message", None) == "message"
    assert frame_label("client", "text", None, None, "no 'message_type' key") == "<malformed>"
    assert frame_label("other", "binary", None, None, None) == "<binary>"
    assert frame_label("other", "text", None, None, None) == "<text>"


def test_frames_without_capture_columns_are_refused():
    with pytest.raises(ConfigurationError, match="lack the capture column"):
        build_plan(pd.DataFrame({"ts": [1]}))


def test_a_reply_with_nothing_left_unanswered_answers_the_last_peer_frame(t0):
    # FIFO over the non-ACK peer frames; a reply that finds none waiting answers the last peer frame
    log = ConnectionLog("cap", f"/ws/outpost/{PK}/", conn_id="c")
    hello, ack = encode_hello({"uuid": "i"}), encode_ack()
    rows = [
        log.open(t0),
        log.message(t0 + 1 * MS, "to_server", hello),
        log.message(t0 + 2 * MS, "to_peer", ack),
        log.message(t0 + 3 * MS, "to_peer", ack),
        log.message(t0 + 4 * MS, "to_server", hello),
        log.message(t0 + 5 * MS, "to_server", ack),  # a peer ACK is answered by nothing
        log.message(t0 + 6 * MS, "to_peer", ack),
        log.message(t0 + 7 * MS, "to_peer", ack),
        log.close(t0 + 9 * MS, "to_server", code=1000),
    ]
    script = build_plan(frames_of(rows)).scripts[0]
    assert [(e.answers, e.latency_ns) for e in script.received] == [(0, 1 * MS), (0, 2 * MS), (1, 2 * MS), (2, 2 * MS)]
    assert [s.replies_before for s in script.sends] == [0, 2, 2]
