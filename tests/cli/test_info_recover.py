"""``wsreplay info`` and ``wsreplay recover``, in-process and as a real console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from wsreplay import CaptureWriter, ConnectionLog
from wsreplay.cli import main
from wsreplay.protocol import encode_hello, hello_args


def make_capture(path, t0, *, seal=True):
    w = CaptureWriter(path, capture_id="cli", autoflush=False)
    log = ConnectionLog("cli", "/ws/outpost/pk/?instance_uuid=i1")
    w.write(log.open(t0))
    w.write(log.message(t0 + 10**9, "to_server", encode_hello(hello_args(uuid="i1", version="2023.10.0"))))
    w.flush()
    if seal:
        w.close()
    return w


def test_info(tmp_path, t0, capsys):
    make_capture(tmp_path, t0)
    assert main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = dict(line.split(None, 1) if " " in line else (line, "") for line in out.splitlines())
    assert lines["events"].strip() == "2"
    assert "HELLO 1" in out and "outposts" in out


def test_info_on_a_missing_capture_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wsreplay info: error:") and "does not exist" in err and "\n" not in err


def test_recover_seals_leftovers(tmp_path, t0, capsys):
    w = make_capture(tmp_path, t0, seal=False)
    w._sink.close()  # a crashed recorder: the stream is left behind, unlocked
    assert main(["recover", str(tmp_path)]) == 0
    assert "sealed 1 segment(s) with 2 event(s)" in capsys.readouterr().out
    assert [p.suffix for p in tmp_path.iterdir()] == [".parquet"]


def test_console_script_and_module_entry_point(tmp_path, t0):
    make_capture(tmp_path, t0)
    script = Path(sys.executable).parent / "wsreplay"
    for cmd in ([sys.executable, "-m", "wsreplay"], [str(script)]):
        res = subprocess.run([*cmd, "info", str(tmp_path)], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert "HELLO 1" in res.stdout
    res = subprocess.run([sys.executable, "-m", "wsreplay", "info", "/nonexistent"], capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr
