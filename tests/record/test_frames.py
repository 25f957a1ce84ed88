"""The sans-I/O frame watcher: what is forwarded, what is recorded."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from wsreplay.record.frames import FrameParser, close_frame


def _frames(*frames: Frame, mask: bool) -> bytes:
    return b"".join(f.serialize(mask=mask) for f in frames)


def _feed_in_pieces(parser: FrameParser, data: bytes, cuts: list[int]):
    forwarded, events = [], []
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in itertools.pairwise(points):
        fw, ev = parser.feed(data[a:b])
        forwarded.append(fw)
        events += ev
    return b"".join(forwarded), events


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=20),
    mask=st.booleans(),
)
def test_any_chunking_forwards_every_byte_and_sees_every_message(payloads, cuts, mask):
    frames = [Frame(Opcode.BINARY, p) for p in payloads]
    data = _frames(*frames, mask=mask)
    forwarded, events = _feed_in_pieces(FrameParser(max_size=1 << 20), data, cuts)
    assert forwarded == data
    assert [e.data for e in events] == payloads
    assert all(e.kind == "message" and e.opcode == "binary" for e in events)


def test_text_frame_is_unmasked_for_recording_and_forwarded_masked():
    data = _frames(Frame(Opcode.TEXT, b'{"instruction": 1, "args": {}}'), mask=True)
    forward, events = FrameParser().feed(data)
    assert forward == data
    assert events[0].opcode == "text"
    assert events[0].data == b'{"instruction": 1, "args": {}}'


def test_fragmented_message_is_reassembled_around_a_ping():
    data = _frames(
        Frame(Opcode.TEXT, b"hel", fin=False),
        Frame(Opcode.PING, b"p"),
        Frame(Opcode.CONT, b"lo", fin=False),
        Frame(Opcode.CONT, b"!", fin=True),
        mask=True,
    )
    forward, events = FrameParser().feed(data)
    assert forward == data
    assert [(e.kind, e.data) for e in events] == [("message", b"hello!")]


def test_close_frames_give_code_and_reason():
    p = FrameParser()
    _, events = p.feed(_frames(Frame(Opcode.CLOSE, (1012).to_bytes(2, "big") + "restart ü".encode()), mask=False))
    assert (events[0].kind, events[0].code, events[0].reason) == ("close", 1012, "restart ü")
    _, events = p.feed(_frames(Frame(Opcode.CLOSE, b""), mask=True))
    assert (events[0].code, events[0].reason) == (1005, "")


def test_oversize_frame_is_refused_before_any_of_it_is_forwarded():
    p = FrameParser(max_size=10)
    small = _frames(Frame(Opcode.TEXT, b"ok"), mask=True)
    big = _frames(Frame(Opcode.BINARY, b"x" * 11), mask=True)
    forward, events = p.feed(small + big)
    assert forward == small
    assert [e.kind for e in events] == ["message", "oversize"]
    assert events[1].size == 11
    assert p.refused
    assert p.feed(b"more") == (b"", [])


def test_oversize_message_made_of_small_fragments_is_refused():
    p = FrameParser(max_size=10)
    data = _frames(Frame(Opcode.TEXT, b"123456", fin=False), Frame(Opcode.CONT, b"789012"), mask=False)
    forward, events = p.feed(data)
    assert forward == data[:8]  # the first fragment only
    assert events[-1].kind == "oversize"
    assert events[-1].size == 12


def test_incomplete_header_is_held_back_and_boundary_tracked():
    p = FrameParser()
    data = _frames(Frame(Opcode.TEXT, b"x" * 200), mask=True)  # 2+2+4 byte header
    forward, events = p.feed(data[:5])
    assert forward == b"" and events == [] and p.at_boundary
    forward, _ = p.feed(data[5:20])
    assert forward == data[:20] and not p.at_boundary
    forward, events = p.feed(data[20:])
    assert forward == data[20:] and p.at_boundary and events[0].size == 200


def test_framing_problems_are_reported_but_relayed():
    raw = bytes([0x83, 0x01]) + b"z"  # reserved opcode 0x3
    forward, events = FrameParser().feed(raw)
    assert forward == raw
    assert events[0].kind == "bad_frame" and "reserved opcode" in (events[0].reason or "")
    forward, events = FrameParser().feed(_frames(Frame(Opcode.CONT, b"orphan"), mask=False))
    assert events[0].kind == "bad_frame" and "continuation" in (events[0].reason or "")


def test_compressed_flag_is_kept():
    raw = bytes([0xC1, 0x02, 0x01, 0x02])  # FIN + RSV1, text, 2 bytes
    _, events = FrameParser().feed(raw)
    assert events[0].compressed


def test_close_frame_encoding_round_trips_masked_and_unmasked():
    for mask in (False, True):
        _, events = FrameParser().feed(close_frame(1001, "going away", mask=mask))
        assert (events[0].code, events[0].reason) == (1001, "going away")
