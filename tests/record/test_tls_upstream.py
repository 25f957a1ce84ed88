"""An https/wss upstream: certificates are verified unless told otherwise."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from record_support import PK, bearer
from tests_support import self_signed_cert
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import InvalidStatus

from wsreplay.protocol import encode_ack
from wsreplay.record import Recorder


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


async def _ack(ws):
    async for _ in ws:
        await ws.send(encode_ack())


def _run(cert, tmp_path, **rec_kwargs):
    key, crt = cert
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)

    async def main():
        async with serve(_ack, "127.0.0.1", 0, ssl=ctx) as server:
            port = server.sockets[0].getsockname()[1]
            async with Recorder(f"https://127.0.0.1:{port}", out=tmp_path / "cap", **rec_kwargs) as rec:
                try:
                    async with connect(f"{rec.ws_url}/ws/outpost/{PK}/", additional_headers=bearer()) as ws:
                        await ws.send('{"instruction": 1, "args": {}}')
                        return await ws.recv(), rec.frames()
                except InvalidStatus as exc:
                    return exc.response.status_code, rec.frames()

    return asyncio.run(main())


def test_an_untrusted_certificate_is_refused_by_default(cert, tmp_path):
    status, frames = _run(cert, tmp_path)
    assert status == 502
    reason = frames[frames.event == "error"].close_reason.iloc[0]
    assert "certificate" in reason and "--ca-file" in reason


def test_ca_file_and_insecure_let_it_through(cert, tmp_path):
    ack, frames = _run(cert, tmp_path / "ca", ca_file=str(cert[1]))
    assert ack == encode_ack() and list(frames.event[:3]) == ["open", "message", "message"]
    ack, _ = _run(cert, tmp_path / "insecure", insecure=True)
    assert ack == encode_ack()
