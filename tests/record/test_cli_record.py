"""``wsreplay record`` as a process: SIGTERM/SIGINT finish cleanly, SIGKILL loses at most a flush interval."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from record_support import PK, SECRETS, assert_no_secret_bytes, bearer, mock
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from wsreplay import load, recover
from wsreplay.cli import main as cli_main
from wsreplay.protocol import encode_hello, hello_args

FLUSH = 0.2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(upstream: str, out: Path) -> tuple[subprocess.Popen[str], int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("AUTHENTIK_TOKEN", "AUTHENTIK_SESSION")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsreplay", "record", "--upstream", upstream, "--listen", f"127.0.0.1:{port}",
         "--out", str(out), "--flush-interval", str(FLUSH), "--status-interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read() if proc.stderr else "recorder exited") from None
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("recorder did not start listening")


def _hello(n: int) -> str:
    return encode_hello(hello_args(uuid="cli-1", version="2023.10.0", hostname=f"h{n}"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_closes_peers_with_1001_seals_and_exits_0(tmp_path, sig):
    out = tmp_path / "cap"
    ak = mock().start_in_thread()
    try:
        proc, port = _start(ak.url, out)
        with connect(f"ws://127.0.0.1:{port}/ws/outpost/{PK}/?instance_uuid=cli-1", additional_headers=bearer()) as ws:
            ws.send(_hello(0))
            ws.recv()
            time.sleep(0.5)  # long enough for a status line
            proc.send_signal(sig)
            with pytest.raises(ConnectionClosed):
                ws.recv()
            code = ws.close_code
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        ak.stop()
    assert proc.returncode == 0, stderr
    assert code == 1001
    assert "recorded 1 connections" in stdout and "2 frames" in stdout
    assert "flush lag" in stderr  # the status line
    assert not list(out.glob("*.arrows")) and list(out.glob("*.parquet"))
    frames = load(out)
    assert list(frames.event) == ["open", "message", "message", "close"]
    for secret in SECRETS:
        assert secret not in stdout + stderr
    assert_no_secret_bytes(out)


def test_sigkill_loses_nothing_older_than_the_flush_interval(tmp_path):
    out = tmp_path / "cap"
    ak = mock().start_in_thread()
    try:
        proc, port = _start(ak.url, out)
        with connect(f"ws://127.0.0.1:{port}/ws/outpost/{PK}/?instance_uuid=cli-1", additional_headers=bearer()) as ws:
            for n in range(20):
                ws.send(_hello(n))
                ws.recv()
            time.sleep(3 * FLUSH)  # everything above is now older than the flush interval
            ws.send(_hello(99))
            proc.kill()
            proc.communicate(timeout=20)
    finally:
        ak.stop()
    assert proc.returncode == -signal.SIGKILL
    assert list(out.glob("*.arrows"))  # the crash left an in-progress segment
    recover(out)
    assert not list(out.glob("*.arrows"))
    frames = load(out)
    sent = frames[(frames.event == "message") & (frames.direction == "to_server")]
    acks = frames[(frames.event == "message") & (frames.direction == "to_peer")]
    assert list(sent.hostname[:20]) == [f"h{n}" for n in range(20)]
    assert len(acks) >= 20
    assert frames.event.iloc[0] == "open"


def test_bad_upstream_is_a_one_line_error(tmp_path, capsys):
    code = cli_main(["record", "--upstream", "ftp://nope", "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "http(s)://" in err


def test_recorder_says_which_event_loop_it_runs_on(tmp_path):
    # WSREPLAY_LOOP (set by the test session's --loop) is the default of --loop
    proc, _port = _start("http://127.0.0.1:9", tmp_path / "cap")
    proc.terminate()
    _out, err = proc.communicate(timeout=60)
    assert f"loop {os.environ['WSREPLAY_LOOP']}" in err.splitlines()[0]
