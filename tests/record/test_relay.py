"""The relay takes over the handshake's connection without losing the bytes that came with it."""

from __future__ import annotations

import asyncio

from record_support import PK, TOKEN, mock_and_recorder, wait_for
from websockets.frames import Frame, Opcode

from wsreplay.protocol import encode_hello, hello_args

HELLO = encode_hello(hello_args(uuid="glued-1", version="2023.10.0"))


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
