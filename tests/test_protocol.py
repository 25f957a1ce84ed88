"""Decoding and encoding authentik frames, checked against a real server's traffic."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests_support import real_frames

from wsreplay import protocol
from wsreplay.protocol import Instruction, classify_path, decode


def test_ack_is_byte_exact_with_real_authentik():
    acks = {r["data"] for r in real_frames() if r["kind"] == "text" and r["data"].startswith('{"instruction": 0')}
    assert acks == {protocol.encode_ack()}
    assert protocol.encode_ack() == '{"instruction": 0, "args": {}}'


def test_server_frames_of_real_authentik_reencode_identically():
    sent = {r["data"] for r in real_frames() if r["kind"] == "text" and r["direction"] == "server->client"}
    assert protocol.encode_trigger_update() in sent
    notice = json.loads(next(s for s in sent if "Successfully" in s))
    assert protocol.encode_notice(notice["message"], level=notice["level"]) in sent
    logout = next(s for s in sent if '"instruction": 3' in s)
    args = json.loads(logout)["args"]
    assert protocol.encode_provider_specific({"sub_type": args["sub_type"], "session_id": args["session_id"]}) == logout


def test_every_real_frame_decodes_as_the_server_treated_it():
    for r in real_frames():
        if r["kind"] != "text":
            continue
        endpoint = "outpost" if "outpost" in r["endpoint"] else "client"
        d = decode(r["data"], endpoint=endpoint)
        if r["scenario"].startswith(
            ("a7", "a8", "b1-client-no-cookie-malformed", "b2-client-garbage-cookie-malformed")
        ):
            assert d["parse_error"], r  # authentik killed the connection on these
        if r["direction"] == "server->client" and endpoint == "outpost":
            assert d["parse_error"] is None and d["instruction_name"] in {"ACK", "TRIGGER_UPDATE", "PROVIDER_SPECIFIC"}


def test_hello_fields():
    hello = protocol.encode_hello(
        protocol.hello_args(uuid="i-1", version="2024.2.1", build_hash="abc", hostname="h1"), compact=True
    )
    assert " " not in hello  # Go marshals compactly
    d = decode(hello, endpoint="outpost")
    assert d == {
        "parse_error": None,
        "instruction": 1,
        "instruction_name": "HELLO",
        "instance_uuid": "i-1",
        "version": "2024.2.1",
        "build_hash": "abc",
        "hostname": "h1",
    }


def test_rust_outpost_and_empty_hellos_decode_cleanly():
    rust = protocol.hello_args(uuid="u", version="2025.4.0", golang_version=None)
    assert set(rust) == {"uuid", "version", "buildHash", "hostname"}
    for frame in ('{"instruction": 1}', '{"instruction":1,"args":null}', '{"instruction":1,"args":{}}'):
        d = decode(frame, endpoint="outpost")
        assert d["parse_error"] is None and d["instruction_name"] == "HELLO" and d.get("version") is None


@pytest.mark.parametrize(
    ("payload", "opcode", "error"),
    [
        ("{not json", "text", "not JSON"),
        ('{"args": {}}', "text", "no 'instruction'"),
        ("[1, 2, 3]", "text", "JSON array"),
        ('{"instruction": "1", "args": {}}', "text", "instruction is string"),
        ('{"instruction": true}', "text", "instruction is boolean"),
        ('{"instruction": 99, "args": {}}', "text", "unknown instruction 99"),
        ('{"instruction": 1e400}', "text", "instruction is number"),
        ('{"instruction": 123456789012345678901234567890}', "text", "out of range"),
        ('{"instruction": 1, "args": [1]}', "text", "args is array"),
        ('{"instruction": 1, "args": {"version": 5}}', "text", "version is number"),
        (b"\xff\xfe", "text", "invalid UTF-8"),
        (b"\x00\x01", "binary", "binary frame"),
        ("[" * 100_000, "text", "not JSON"),
        (None, "text", "empty frame"),
    ],
)
def test_bad_outpost_input_is_described_not_raised(payload, opcode, error):
    d = decode(payload, endpoint="outpost", opcode=opcode)
    assert error in d["parse_error"]
    assert len(d["parse_error"]) <= 200


def test_unknown_instruction_is_kept():
    d = decode('{"instruction": 99, "args": {}}', endpoint="outpost")
    assert d["instruction"] == 99 and d["instruction_name"] == "UNKNOWN"


def test_one_mib_frame():
    big = json.dumps({"instruction": 1, "args": {"hostname": "x" * (1 << 20)}})
    d = decode(big, endpoint="outpost")
    assert d["parse_error"] is None and len(d["hostname"]) == 1 << 20


def test_client_frames():
    d = decode(protocol.encode_notice("hi", level="warning"), endpoint="client")
    assert (d["message_type"], d["level"], d["tags"], d["message"]) == ("message", "warning", "warning", "hi")
    assert decode(protocol.encode_session_authenticated(), endpoint="client")["message_type"] == "session.authenticated"
    n = decode(protocol.encode_notification_new("n1", {"body": "b"}), endpoint="client")
    assert n["message_type"] == "notification.new" and n["parse_error"] is None
    assert "no 'message_type'" in decode('{"hello": "from-client"}', endpoint="client")["parse_error"]


def test_session_end_has_type_key():
    frame = json.loads(protocol.encode_session_end("abc"))
    assert frame == {"instruction": 4, "args": {"type": "event.session.end", "session_id": "abc"}}


def test_other_endpoint_keeps_binary_without_error():
    assert decode(b"\x00", endpoint="other", opcode="binary")["parse_error"] is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ws/outpost/1ee03a64-69e4-4f1e-9f06-35cc8e6de56a/", ("outpost", "1ee03a64-69e4-4f1e-9f06-35cc8e6de56a")),
        ("/ws/outpost/pk/?instance_uuid=x&attempt=0", ("outpost", "pk")),
        ("/ws/outpost/pk", ("other", None)),
        ("/ws/client/", ("client", None)),
        ("/ws/other/", ("other", None)),
    ],
)
def test_classify_path(path, expected):
    assert classify_path(path) == expected


def test_instruction_names():
    assert [protocol.instruction_name(i) for i in range(6)] == [
        "ACK",
        "HELLO",
        "TRIGGER_UPDATE",
        "PROVIDER_SPECIFIC",
        "SESSION_END",
        "UNKNOWN",
    ]
    assert Instruction.HELLO == 1


@settings(max_examples=300, deadline=None)
@given(
    payload=st.one_of(st.text(), st.binary(), st.none()),
    endpoint=st.sampled_from(["outpost", "client", "other"]),
    opcode=st.sampled_from(["text", "binary"]),
)
def test_decoder_never_raises(payload, endpoint, opcode):
    d = decode(payload, endpoint=endpoint, opcode=opcode)
    assert "parse_error" in d


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    instruction=st.one_of(st.integers(), st.text(), st.none(), st.booleans(), st.floats()),
    args=json_values,
    endpoint=st.sampled_from(["outpost", "client"]),
)
def test_decoder_never_raises_on_json_shapes(instruction, args, endpoint):
    payload = json.dumps({"instruction": instruction, "args": args, "message_type": args})
    d = decode(payload, endpoint=endpoint)
    assert d["parse_error"] is None or isinstance(d["parse_error"], str)
