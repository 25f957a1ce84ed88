"""The relay's TCP behaviour with a WebSocket peer nobody here wrote (wsproto over a raw socket)."""

from __future__ import annotations

import asyncio
import socket

from passthrough_support import uvicorn_upstream
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from wsreplay.record import Recorder


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
        writer.transport.get_extra_info("socket").shutdown(socket.SHUT_WR)
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
