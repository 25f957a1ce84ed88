"""The recorder's frame parser against websockets' own sans-I/O protocol, on the same bytes.

Arbitrary messages (text and binary, empty to past the 16- and 64-bit length forms), split
into fragments at arbitrary byte offsets, with pings and pongs between the fragments, masked
(towards a server) or not, optionally ended by a close frame, and cut into arbitrary TCP reads.
websockets' :class:`~websockets.protocol.Protocol` reads the stream as a server (or client)
would; its frames are reassembled into messages as its asyncio layer does. The recorder's
:class:`~wsreplay.record.frames.FrameParser` must see the same messages and close, in order,
forward every byte, and end on a frame boundary.
"""

from __future__ import annotations

import itertools
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.exceptions import PayloadTooBig
from websockets.frames import Close, Opcode, apply_mask
from websockets.protocol import Protocol, Side

from wsreplay.record.frames import FrameParser

LIMIT = 1 << 20


def _frame(fin: bool, opcode: int, payload: bytes, mask: bytes | None, *, wide: bool = False) -> bytes:
    """One frame encoded by hand (the mask key is drawn, not random, so examples replay).

    *wide*: a data frame's length in the 64-bit form even when it is small (legal, if unusual).
    """
    head = bytes([(0x80 if fin else 0) | opcode])
    bit = 0x80 if mask is not None else 0
    n = len(payload)
    if wide:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    elif n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    return head + mask + apply_mask(payload, mask)


_SIZES = st.one_of(st.integers(0, 300), st.sampled_from([125, 126, 127, 65535, 65536, 70000]))


@st.composite
def _message(draw: st.DrawFn) -> tuple[str, bytes]:
    if draw(st.booleans()):
        text = draw(st.text(max_size=200))
        return "text", text.encode()
    size = draw(_SIZES)
    seed = draw(st.binary(min_size=1, max_size=16))
    return "binary", (seed * (size // len(seed) + 1))[:size]


@st.composite
def _stream(draw: st.DrawFn, *, controls: bool = True) -> tuple[bytes, bool, list[tuple[object, ...]], list[int]]:
    """Messages cut into fragments, with pings and pongs between the fragments when *controls*."""
    masked = draw(st.booleans())
    key = (lambda: draw(st.binary(min_size=4, max_size=4))) if masked else (lambda: None)
    messages = draw(st.lists(_message(), max_size=6))
    out = b""
    expected: list[tuple[object, ...]] = []
    for kind, data in messages:
        cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=4))))
        parts = [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)])]
        for i, part in enumerate(parts):
            opcode = (Opcode.TEXT if kind == "text" else Opcode.BINARY) if i == 0 else Opcode.CONT
            out += _frame(i == len(parts) - 1, opcode.value, part, key(), wide=draw(st.booleans()))
            if controls and i < len(parts) - 1 and draw(st.booleans()):  # a control frame between fragments
                control = draw(st.sampled_from([Opcode.PING, Opcode.PONG]))
                out += _frame(True, control.value, draw(st.binary(max_size=125)), key())
        expected.append((kind, data))
    if draw(st.booleans()):
        code = draw(st.sampled_from([None, 1000, 1001, 1008, 1011, 4000]))
        reason = draw(st.text(max_size=30)).encode()[:123] if code else b""
        payload = struct.pack("!H", code) + reason if code else b""  # no code: 1005 on both sides
        out += _frame(True, Opcode.CLOSE.value, payload, key())
    reads = draw(st.lists(st.integers(0, max(len(out), 1)), max_size=12))
    return out, masked, expected, reads


def _websockets_reads(data: bytes, masked: bool, reads: list[int], limit: int) -> list[tuple[object, ...]]:
    protocol = Protocol(Side.SERVER if masked else Side.CLIENT, max_size=limit)
    points = sorted({0, len(data), *(r % (len(data) + 1) for r in reads)})
    for a, b in itertools.pairwise(points):
        protocol.receive_data(data[a:b])
    seen: list[tuple[object, ...]] = []
    kind, parts = None, []
    for frame in protocol.events_received():
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            kind, parts = ("text" if frame.opcode is Opcode.TEXT else "binary"), [frame.data]
        elif frame.opcode is Opcode.CONT:
            parts.append(frame.data)
        elif frame.opcode is Opcode.CLOSE:
            close = Close.parse(frame.data)
            seen.append(("close", close.code, close.reason))
            continue
        else:
            continue
        if frame.fin:
            seen.append((kind, b"".join(bytes(p) for p in parts)))
    if protocol.parser_exc is not None:
        assert isinstance(protocol.parser_exc, PayloadTooBig), protocol.parser_exc
        seen.append(("too big",))
    return seen


def _recorder_reads(data: bytes, reads: list[int], limit: int) -> tuple[list[tuple[object, ...]], bytes, FrameParser]:
    parser = FrameParser(max_size=limit)
    points = sorted({0, len(data), *(r % (len(data) + 1) for r in reads)})
    seen: list[tuple[object, ...]] = []
    forwarded = b""
    for a, b in itertools.pairwise(points):
        fw, events = parser.feed(data[a:b])
        forwarded += fw
        for ev in events:
            assert ev.kind in ("message", "close", "oversize"), ev
            if ev.kind == "oversize":
                seen.append(("too big",))
            else:
                seen.append((ev.opcode, ev.data) if ev.kind == "message" else ("close", ev.code, ev.reason))
    return seen, forwarded, parser


@settings(max_examples=300, deadline=None)
@given(case=_stream())
def test_the_recorder_reads_every_message_as_websockets_does(case):
    data, masked, expected, reads = case
    reference = _websockets_reads(data, masked, reads, LIMIT)
    assert [m for m in reference if m[0] != "close"] == expected  # the generator made what it meant
    seen, forwarded, parser = _recorder_reads(data, reads, LIMIT)
    assert seen == reference
    assert forwarded == data
    assert parser.at_boundary


@settings(max_examples=200, deadline=None)
@given(case=_stream(controls=False), limit=st.integers(0, 400))
def test_both_refuse_the_same_first_message_over_the_size_limit(case, limit):
    # No control frames inside fragmented messages here: websockets charges a ping or pong that
    # arrives between two fragments to the message's remaining size budget (a 1-byte ping after a
    # 1-byte fragment is "too big" at max_size=1), while the recorder's limit is on messages only;
    # with no size limit, the test above checks interleaved control frames.
    data, masked, _expected, reads = case
    reference = _websockets_reads(data, masked, reads, limit)
    seen, forwarded, parser = _recorder_reads(data, reads, limit)
    assert seen == reference
    assert parser.refused == (reference[-1:] == [("too big",)])
    if not parser.refused:
        assert forwarded == data
