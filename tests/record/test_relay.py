"""The relay's TCP behaviour: half-closes with a peer nobody here wrote (wsproto over a raw socket), and
the bytes that come with the handshake."""

from __future__ import annotations

import asyncio

from passthrough_support import uvicorn_upstream
from record_support import PK, TOKEN, mock_and_recorder, wait_for
from websockets.frames import Frame, Opcode
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from wsreplay.protocol import encode_hello, hello_args
from wsreplay.record import Recorder

HELLO = encode_hello(hello_args(uuid="glued-1", version="2023.10.0"))


async def _close_then_half_close(port: int) -> list[object]:
    """Handshake, close 1000, SHUT_WR; return what the server sent back until end of stream."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ws = WSConnection(ConnectionType.CLIENT)
    writer.write(ws.send(Request(host="brand.example", target="/ws/client/")))
    seen: list[object] = []
    async with asyncio.timeout(10):
        while not any(isinstance(e, TextMessage) for e in seen):  # accepted, then the greeting
            ws.receive_data(await reader.read(65536))
            seen += list(ws.events())
        writer.write(ws.send(CloseConnection(code=1000, reason="bye")))
        await writer.drain()
        writer.write_eof()  # shutdown(SHUT_WR), on any event loop (uvloop hides the socket's shutdown)
        while data := await reader.read(65536):
            ws.receive_data(data)
            seen += list(ws.events())
    writer.close()
    out: list[object] = []
    for event in seen:
        if isinstance(event, AcceptConnection):
            out.append("accepted")
        elif isinstance(event, CloseConnection):
            out.append(("close", event.code))
    return out


def test_close_then_shut_wr_still_gets_the_servers_close_frame(tmp_path):
    async def main():
        async with uvicorn_upstream() as port:
            direct = await _close_then_half_close(port)
            async with Recorder(f"http://127.0.0.1:{port}", out=tmp_path / "cap", flush_interval=0.2) as rec:
                via = await _close_then_half_close(rec.address[1])
                return direct, via, rec.frames()

    direct, via, frames = asyncio.run(main())
    assert direct == ["accepted", ("close", 1000)]
    assert via == direct
    closes = frames[frames.event == "close"]
    assert list(zip(closes.close_code, closes.direction)) == [(1000, "to_server")]
    assert not (frames.event == "error").any()


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(2)
    length = head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    return await reader.readexactly(length)


def test_a_frame_sent_with_the_handshake_is_relayed_and_recorded(tmp_path):
    async def main():
        async with mock_and_recorder(tmp_path / "cap") as (_ak, rec):
            reader, writer = await asyncio.open_connection(*rec.address)
            request = (
                f"GET /ws/outpost/{PK}/?instance_uuid=glued-1 HTTP/1.1\r\nHost: {rec.address[0]}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
            ).encode()
            # the handshake and the first frame in one write: the frame sits behind the request head
            writer.write(request + Frame(Opcode.TEXT, HELLO.encode()).serialize(mask=True, extensions=[]))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            ack = await asyncio.wait_for(_read_frame(reader), 10)
            writer.close()
            await wait_for(lambda: rec.stats.frames >= 2)
            rec.flush()
            return head, ack, rec.frames()

    head, ack, frames = asyncio.run(main())
    assert head.startswith(b"HTTP/1.1 101")
    assert ack == b'{"instruction": 0, "args": {}}'
    messages = frames[frames.event == "message"]
    assert list(messages.payload) == [HELLO, ack.decode()]
