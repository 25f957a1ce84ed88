"""The recorder's C fast path (``wsreplay/record/_speedups.c``) against the same code in Python.

``whole_frame`` must give what ``_whole_frame_py`` gives on any bytes, and a recording made with the C
``Tap`` as each socket's ``data_received`` must hold the same rows as one made with ``_Side._receive``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import sysconfig
import weakref

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from passthrough_support import uvicorn_upstream
from record_support import PK, bearer, mock_and_recorder, outpost_url
from websockets.asyncio.client import connect
from websockets.frames import Opcode

from wsreplay.protocol import encode_hello, hello_args
from wsreplay.record import Recorder
from wsreplay.record import frames as frames_module
from wsreplay.record import relay as relay_module
from wsreplay.record.clock import WallClock

speedups = pytest.importorskip(
    "wsreplay.record._speedups",
    reason="the C fast path is not compiled here (pip install -e . builds it when a C compiler is found)",
)


def test_the_fast_path_is_compiled_where_a_c_compiler_is():
    """``make test`` installs with a compiler: the recorder there runs the C path, not the fallback."""
    if shutil.which(str(sysconfig.get_config_var("CC") or "cc").split()[0]) is None:
        pytest.skip("no C compiler on this machine")
    assert frames_module.whole_frame is speedups.whole_frame
    assert relay_module.Tap is speedups.Tap


def _frame(opcode: Opcode, payload: bytes, *, fin: bool = True, rsv1: bool = False, mask: bool = True) -> bytes:
    """Any frame, valid or not (websockets' ``Frame.serialize`` refuses the invalid ones)."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode.value])
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + n.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


_OPCODES = st.sampled_from(list(Opcode))
_PAYLOADS = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([125, 126, 127, 65535, 65536, 70000]).map(lambda n: os.urandom(n)),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    op=_OPCODES,
    payload=_PAYLOADS,
    fin=st.booleans(),
    rsv1=st.booleans(),
    mask=st.booleans(),
    cut=st.integers(-3, 3),
    max_size=st.sampled_from([0, 1, 125, 126, 65535, 65536, 1 << 20]),
)
def test_whole_frame_equals_python_on_frames_and_near_frames(op, payload, fin, rsv1, mask, cut, max_size):
    data = _frame(op, payload, fin=fin, rsv1=rsv1, mask=mask)
    if cut < 0:
        data = data[:cut]  # incomplete
    elif cut > 0:
        data = data + data[:cut]  # a frame and the start of the next
    expected = frames_module._whole_frame_py(data, max_size)
    assert speedups.whole_frame(data, max_size) == expected
    assert speedups.whole_frame(bytearray(data), max_size) == expected
    assert speedups.whole_frame(memoryview(data), max_size) == expected
    if cut == 0 and fin and op in (Opcode.TEXT, Opcode.BINARY) and len(payload) <= max_size:
        assert expected == (op.name.lower(), payload, rsv1)


@settings(max_examples=400)
@given(data=st.binary(max_size=40), max_size=st.integers(0, 1 << 40))
def test_whole_frame_equals_python_on_any_bytes(data, max_size):
    assert speedups.whole_frame(data, max_size) == frames_module._whole_frame_py(data, max_size)


def test_whole_frame_says_what_was_wrong_with_its_arguments():
    with pytest.raises(TypeError, match="takes 2 arguments"):
        speedups.whole_frame(b"\x81\x00")
    with pytest.raises(TypeError):
        speedups.whole_frame("not bytes", 10)
    with pytest.raises(TypeError):
        speedups.whole_frame(b"\x81\x00", "10")


async def _conversation(rec) -> None:
    """Whole messages, fragments, control frames, a 64-bit length, glued frames and a close, via *rec*."""
    hello = encode_hello(hello_args(uuid="tap-1", version="2024.2.1"))
    async with connect(outpost_url(rec), additional_headers=bearer(), compression=None) as ws:
        for _ in range(3):
            await ws.send(hello)
            await asyncio.wait_for(ws.recv(), 10)
        ws.transport.write(_frame(Opcode.TEXT, hello.encode()) + _frame(Opcode.TEXT, hello.encode()))  # one read
        await asyncio.wait_for(ws.recv(), 10)
        await asyncio.wait_for(ws.recv(), 10)
        await ws.ping(b"p")
        await ws.send("x" * 70_000)  # the 64-bit length form
        # a fragmented text message, then a binary one: authentik closes the connection on what it cannot read
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(["frag", "mented"])
            await ws.send(b"\x00\x01binary")
            await asyncio.sleep(0.5)
    async with connect(outpost_url(rec), additional_headers=bearer(), compression=None) as ws:
        await ws.send(hello)
        await asyncio.wait_for(ws.recv(), 10)
        with contextlib.suppress(websockets.ConnectionClosed):  # RSV1 without a negotiated extension
            ws.transport.write(_frame(Opcode.TEXT, hello.encode(), rsv1=True))
            await asyncio.wait_for(ws.recv(), 10)


def _record(tmp_path, name: str):
    async def main():
        async with mock_and_recorder(tmp_path / name) as (_ak, rec):
            await _conversation(rec)
            await asyncio.sleep(0.3)
            return rec.frames()

    return asyncio.run(main())


_DIFFERENT_EACH_RUN = ["ts", "capture_id", "conn_id", "peer"]


def _rows(frames) -> list[list[str]]:
    """The rows as text, connections in the order they opened, without what differs from run to run."""
    keep = [c for c in frames.columns if c not in _DIFFERENT_EACH_RUN]
    conn_order = {c: i for i, c in enumerate(dict.fromkeys(frames.sort_values("ts").conn_id))}
    out = frames.assign(_conn=frames.conn_id.map(conn_order)).sort_values(["_conn", "seq"])
    return out[keep].astype(str).values.tolist()


def test_a_recording_with_the_c_tap_equals_one_with_the_python_fast_path(tmp_path, monkeypatch):
    with_c = _record(tmp_path, "c")
    monkeypatch.setattr(relay_module, "Tap", None)
    monkeypatch.setattr(relay_module, "whole_frame", frames_module._whole_frame_py)
    with_python = _record(tmp_path, "py")

    assert _rows(with_c) == _rows(with_python)
    messages = with_c[with_c.event == "message"]
    assert len(messages) == 16  # 6 HELLOs and their ACKs, 70,000 x, the fragmented one, the binary one, RSV1
    assert (messages.parse_error.astype(str).str.startswith("compressed frame")).sum() == 1  # kept as received
    assert set(messages.opcode.astype(str)) == {"text", "binary"}
    assert (messages["size"] == 70_000).any()
    assert messages.path.astype(str).str.contains(PK).all()


async def _echo_conversation(url: str) -> None:
    """Texts of every length form, one fragmented, through to uvicorn's wsproto echo (a peer nobody here wrote)."""
    async with connect(url, compression=None) as ws:
        await asyncio.wait_for(ws.recv(), 10)  # uvicorn's greeting: the Host it got
        for text in ["hello", "x" * 125, "y" * 126, "z" * 65_536, "w" * 70_000]:
            await ws.send(text)
            assert await asyncio.wait_for(ws.recv(), 10) == text
        await ws.send(["frag", "mented"])
        assert await asyncio.wait_for(ws.recv(), 10) == "fragmented"


def _record_echo(tmp_path, name: str):
    async def main():
        async with uvicorn_upstream() as port:
            async with Recorder(f"http://127.0.0.1:{port}", out=tmp_path / name, flush_interval=0.2) as rec:
                await _echo_conversation(f"{rec.ws_url}/ws/client/")
                await asyncio.sleep(0.3)
                return rec.frames()

    frames = asyncio.run(main())
    # uvicorn's greeting names the recorder's address: a new port each run
    return frames.assign(payload=frames.payload.astype(str).str.replace(r"127\.0\.0\.1:\d+", "HOST", regex=True))


def test_through_uvicorn_and_wsproto_the_c_tap_records_what_the_python_path_does(tmp_path, monkeypatch):
    with_c = _record_echo(tmp_path, "c")
    monkeypatch.setattr(relay_module, "Tap", None)
    monkeypatch.setattr(relay_module, "whole_frame", frames_module._whole_frame_py)
    with_python = _record_echo(tmp_path, "py")
    assert _rows(with_c) == _rows(with_python)
    messages = with_c[with_c.event == "message"]
    assert len(messages) == 13  # the greeting, 6 sent, 6 echoed
    assert sorted(messages["size"].dropna().astype(int))[-2:] == [70_000, 70_000]


def test_a_tap_reads_a_clock_that_is_not_a_wall_clock():
    class Fixed(WallClock):
        def now_ns(self) -> int:
            return 1234

    relay, dst, queued = _FakeRelay(Fixed()), _FakeTransport(), []
    side_log = _FakeLog()
    tap = speedups.Tap(
        relay, _FakeParser(), side_log, queued.append, "to_server", relay._stats, dst, Fixed().now_ns, (0, 0)
    )
    frame = _frame(Opcode.TEXT, b"hi")
    tap(frame)
    assert queued == [(side_log, 1234, 0, "to_server", "text", b"hi", False)]
    assert dst.written == [frame]
    assert (side_log.seq, relay._stats.frames, relay._stats.bytes) == (1, 1, 2)


def test_a_tap_hands_other_reads_to_the_relay_and_stops_when_the_relay_stops():
    relay, dst, queued = _FakeRelay(WallClock()), _FakeTransport(), []
    parser = _FakeParser()
    tap = speedups.Tap(
        relay, parser, _FakeLog(), queued.append, "to_peer", relay._stats, dst, None, WallClock().anchors
    )
    ping = _frame(Opcode.PING, b"p", mask=False)
    tap(ping)  # not a data frame
    parser.clean = False
    tap(_frame(Opcode.TEXT, b"mid-message", mask=False))  # a message is in progress
    parser.clean = True
    relay.stopping = True
    tap(_frame(Opcode.TEXT, b"late", mask=False))
    assert [d for _, d in relay.handed] == [
        ping,
        _frame(Opcode.TEXT, b"mid-message", mask=False),
        _frame(Opcode.TEXT, b"late", mask=False),
    ]
    assert {direction for direction, _ in relay.handed} == {"to_peer"}
    assert queued == [] and dst.written == []


def test_a_tap_says_what_was_wrong_instead_of_crashing():
    with pytest.raises(RuntimeError, match="before __init__"):
        speedups.Tap.__new__(speedups.Tap)(b"\x81\x00")
    with pytest.raises(TypeError):
        speedups.Tap(1, 2, 3)
    relay = _FakeRelay(WallClock())
    tap = speedups.Tap(
        relay, _FakeParser(), _FakeLog(), [].append, "to_server", relay._stats, _FakeTransport(), None, (0, 0)
    )
    with pytest.raises(TypeError):
        tap("not bytes")


def test_a_tap_in_a_reference_cycle_is_collected():
    relay = _FakeRelay(WallClock())
    dst = _FakeTransport()
    tap = speedups.Tap(relay, _FakeParser(), _FakeLog(), [].append, "to_server", relay._stats, dst, None, (0, 0))
    dst.protocol = tap  # transport -> tap -> transport's bound methods -> transport: as in the relay
    gone = weakref.ref(dst)
    del tap, dst
    gc.collect()
    assert gone() is None


class _Stats:
    frames = 0
    bytes = 0


class _FakeRelay:
    def __init__(self, clock: WallClock) -> None:
        self.stopping = False
        self._ended: list[str] = []
        self._clock = clock
        self._stats = _Stats()
        self.handed: list[tuple[str, bytes]] = []

    def _on_data(self, direction: str, data: bytes) -> None:
        self.handed.append((direction, data))


class _FakeParser:
    clean = True
    max_size = 1 << 20


class _FakeLog:
    seq = 0


class _FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.protocol: object = None

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.written.append(data)
