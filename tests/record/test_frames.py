"""The sans-I/O frame watcher: what is forwarded, what is recorded."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode, apply_mask

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


def _raw_frame(fin: bool, rsv1: bool, opcode: int, payload: bytes, mask: bytes | None, wide: bool) -> bytes:
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    bit = 0x80 if mask is not None else 0
    n = len(payload)
    if wide or n > 0xFFFF:
        head += bytes([bit | 127]) + n.to_bytes(8, "big")
    elif n > 125:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([bit | n])
    return head + (mask + apply_mask(payload, mask) if mask is not None else payload)


_RAW_FRAMES = st.lists(
    st.builds(
        _raw_frame,
        fin=st.booleans(),
        rsv1=st.booleans(),
        opcode=st.sampled_from([0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA]),
        payload=st.one_of(st.binary(max_size=140), st.sampled_from([b"", b"x" * 64, b"y" * 65, b"z" * 200])),
        mask=st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
        wide=st.booleans(),
    ),
    min_size=1,
    max_size=8,
)


def _event(e):
    return (e.kind, e.opcode, e.data, e.code, e.reason, e.size, e.compressed)


@settings(max_examples=400, deadline=None)
@given(frames=_RAW_FRAMES, cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12), whole=st.booleans())
def test_whole_message_is_what_feed_would_do(frames, cuts, whole):
    """The relay's fast path (``whole_message``, else ``feed``) against ``feed`` alone, read by read.

    *whole*: also cut at every frame boundary, so that many reads are exactly one frame.
    """
    data = b"".join(frames)
    if whole:
        cuts = [*cuts, *itertools.accumulate(len(f) for f in frames)]
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    fast, plain = FrameParser(max_size=100), FrameParser(max_size=100)
    hits = 0
    for a, b in itertools.pairwise(points):
        read = data[a:b]
        expect_forward, expect_events = plain.feed(read)
        message = fast.whole_message(read)
        if message is None:
            forward, events = fast.feed(read)
            assert (forward, [_event(e) for e in events]) == (expect_forward, [_event(e) for e in expect_events])
        else:
            hits += 1
            opcode, payload, compressed = message
            assert expect_forward == read
            assert [_event(e) for e in expect_events] == [
                ("message", opcode, payload, None, None, len(payload), compressed)
            ]
        assert (fast.at_boundary, fast.refused, fast._buf, fast._msg_op) == (
            plain.at_boundary,
            plain.refused,
            plain._buf,
            plain._msg_op,
        )


def test_whole_message_takes_only_one_whole_final_data_frame():
    hello = _frames(Frame(Opcode.TEXT, b'{"instruction": 0}'), mask=True)
    assert FrameParser().whole_message(hello) == ("text", b'{"instruction": 0}', False)
    assert FrameParser().whole_message(_frames(Frame(Opcode.BINARY, b"b" * 300), mask=False)) == (
        "binary",
        b"b" * 300,
        False,
    )
    assert FrameParser().whole_message(hello[:-1]) is None  # incomplete
    assert FrameParser().whole_message(hello + hello) is None  # two messages: feed
    assert FrameParser().whole_message(_frames(Frame(Opcode.PING, b"p"), mask=True)) is None
    assert FrameParser(max_size=4).whole_message(hello) is None  # over the limit: feed refuses it
    p = FrameParser()
    p.feed(_frames(Frame(Opcode.TEXT, b"hel", fin=False), mask=True))  # a message in progress
    assert p.whole_message(_frames(Frame(Opcode.TEXT, b"new"), mask=True)) is None
