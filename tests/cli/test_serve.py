"""``wsreplay serve``: a real process, real clients, SIGTERM/SIGINT end it with status 0."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

import pytest
from replay_support import HELLO, PK, TOKEN, literal_capture
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import wsreplay
from wsreplay.cli import main
from wsreplay.protocol import decode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, env=None):
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsreplay", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    line = proc.stdout.readline()
    assert "serving" in line, proc.stderr.read()
    return proc, line


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_then_exits_0_on_a_signal(tmp_path, t0, sig):
    capture = wsreplay.save(literal_capture(t0), tmp_path / "capture")
    port = free_port()
    proc, line = start([str(capture), "--listen", f"127.0.0.1:{port}", "--check-token"], {"AUTHENTIK_TOKEN": TOKEN})
    try:
        assert f"http://127.0.0.1:{port}" in line

        async def client():
            url = f"ws://127.0.0.1:{port}/ws/outpost/{PK}/"
            with pytest.raises(InvalidStatus):
                async with connect(url):
                    pass
            async with connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
                await ws.send(HELLO)
                return await asyncio.wait_for(ws.recv(), 10)

        reply = asyncio.run(client())
        assert decode(reply, endpoint="outpost")["instruction_name"] == "ACK"
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped: 1 connection(s) served, 1 refused" in out


def test_serve_refuses_a_busy_port_with_one_line(tmp_path, t0, capsys):
    capture = wsreplay.save(literal_capture(t0), tmp_path / "capture")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        status = main(["serve", str(capture), "--listen", f"127.0.0.1:{port}", "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and "cannot listen on 127.0.0.1" in err


def test_check_token_needs_a_token(tmp_path, t0, capsys, monkeypatch):
    monkeypatch.delenv("AUTHENTIK_TOKEN", raising=False)
    capture = wsreplay.save(literal_capture(t0), tmp_path / "capture")
    assert main(["serve", str(capture), "--check-token"]) == 2
    assert "--check-token needs AUTHENTIK_TOKEN" in capsys.readouterr().err
