"""ConnectionLog: rows of one connection."""

from __future__ import annotations

from wsreplay.events import ConnectionLog, instance_from_query
from wsreplay.protocol import encode_ack, encode_hello, hello_args


def test_outpost_connection_rows(t0):
    log = ConnectionLog("cap", "/ws/outpost/pk/", "instance_uuid=q-1&attempt=2")
    opened = log.open(t0, status=101, user_agent="goauthentik.io/outpost/2023.10.0", peer="127.0.0.1:1")
    assert opened["seq"] == 0 and opened["event"] == "open" and opened["instance_uuid"] == "q-1"
    assert (opened["endpoint"], opened["outpost_uuid"], opened["query"]) == (
        "outpost",
        "pk",
        "instance_uuid=q-1&attempt=2",
    )
    hello = log.message(t0 + 1, "to_server", encode_hello(hello_args(uuid="q-1", version="v")))
    assert hello["seq"] == 1 and hello["instruction_name"] == "HELLO" and hello["version"] == "v"
    assert hello["size"] == len(hello["payload"])
    ack = log.message(t0 + 2, "to_peer", encode_ack())
    assert ack["instruction"] == 0 and ack["direction"] == "to_peer"
    close = log.close(t0 + 3, "to_peer", code=1012, reason="restart")
    assert (close["close_code"], close["close_reason"], close["seq"]) == (1012, "restart", 3)
    assert len({r["conn_id"] for r in (opened, hello, ack, close)}) == 1


def test_instance_uuid_from_first_hello_when_query_has_none(t0):
    log = ConnectionLog("cap", "/ws/outpost/pk/")
    first = log.open(t0)
    assert first["instance_uuid"] is None
    log.message(t0, "to_server", encode_hello(hello_args(uuid="h-1", version="v")))
    later = log.message(t0, "to_server", encode_hello(hello_args(uuid="h-2", version="v")))
    assert later["instance_uuid"] == "h-1"  # one connection is one process


def test_binary_and_non_utf8_frames_keep_raw_bytes(t0):
    log = ConnectionLog("cap", "/ws/client/")
    row = log.message(t0, "to_server", b"\xff\x00raw")
    assert row["opcode"] == "binary" and row["payload_bytes"] == b"\xff\x00raw" and row["size"] == 5
    assert "binary" in row["parse_error"]
    lone = log.message(t0, "to_server", "\udcff")  # a lone surrogate cannot be UTF-8
    assert lone["payload_bytes"] == b"\xed\xb3\xbf" and lone["size"] == 3 and lone["opcode"] == "text"
    assert "invalid UTF-8" in lone["parse_error"]
    raw = log.message(t0, "to_server", b'{"message_type": "x"}', opcode="text")
    assert raw["payload"] == '{"message_type": "x"}' and raw["message_type"] == "x"


def test_error_row(t0):
    log = ConnectionLog("cap", "/ws/outpost/pk/?x=1")
    row = log.error(t0, "upstream refused the handshake", status=403)
    assert (row["event"], row["status"], row["close_reason"], row["query"]) == (
        "error",
        403,
        "upstream refused the handshake",
        "x=1",
    )


def test_instance_from_query():
    assert instance_from_query("instance_uuid=a&attempt=0") == "a"
    assert instance_from_query("") is None and instance_from_query(None) is None


def test_decode_cache_gives_the_same_rows(t0):
    hello = encode_hello(hello_args(uuid="i", version="v"))
    frames = [
        ("to_server", hello, None),
        ("to_peer", encode_ack(), None),
        ("to_server", hello, None),
        ("to_server", "not json", None),
        ("to_server", b"\x00bin", None),
        ("to_server", b"\xff bad utf-8", "text"),
        ("to_server", "\ud800 lone surrogate", None),
    ]
    cache: dict = {}
    for query in ("", "instance_uuid=q"):
        base = ConnectionLog("cap", "/ws/outpost/pk/", query, conn_id="c")
        cached = ConnectionLog("cap", "/ws/outpost/pk/", query, conn_id="c", cache=cache)
        for k, (direction, data, opcode) in enumerate(frames):
            assert cached.message(t0 + k, direction, data, opcode=opcode) == base.message(
                t0 + k, direction, data, opcode=opcode
            )
    assert len(cache) == 3  # HELLO, ACK and the malformed text, once each
