"""``wsreplay replay``: exit statuses and messages, against servers on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest
from replay_support import PK, TOKEN, literal_capture

import wsreplay
from wsreplay.cli import main
from wsreplay.playback import ReplayServer
from wsreplay.protocol import encode_trigger_update


@pytest.fixture
def capture_file(tmp_path, t0):
    return wsreplay.save(literal_capture(t0), tmp_path / "capture")


@pytest.fixture
def served(capture_file):
    with ReplayServer(capture_file, tokens=TOKEN).start_in_thread() as handle:
        yield handle


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("AUTHENTIK_TOKEN", TOKEN)


def test_check_passes_and_the_observed_capture_is_written(capture_file, served, tmp_path, capsys):
    out = tmp_path / "observed"
    status = main(["replay", str(capture_file), "--target", served.url, "--speed", "50", "--check", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert status == 0, stdout
    assert "replayed 3 connection(s)" in stdout and "replay check passed" in stdout
    assert len(wsreplay.load(out)) > 0


def test_a_different_answer_exits_1_with_the_diff(capture_file, capsys):
    from replay_support import MiniAuthentik

    from wsreplay._background import run_in_thread

    async def run():
        async with MiniAuthentik(answer=encode_trigger_update()) as server:
            import asyncio

            return await asyncio.to_thread(
                main,
                [
                    "replay",
                    str(capture_file),
                    "--target",
                    server.url,
                    "--lockstep",
                    "--check",
                    "--reply-timeout",
                    "0.3",
                ],
            )

    status = run_in_thread(run(), name="wsreplay-test")
    stdout = capsys.readouterr().out
    assert status == 1
    assert "replay check failed" in stdout and "connection conn-a" in stdout and "frame #1" in stdout
    assert "expected ACK" in stdout and "TRIGGER_UPDATE" in stdout


def test_unreachable_target_exits_3(capture_file, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    status = main(["replay", str(capture_file), "--target", f"http://127.0.0.1:{port}", "--check"])
    err = capsys.readouterr().err
    assert status == 3 and "unreachable" in err and "Traceback" not in err


def test_refused_handshake_exits_3(capture_file, served, capsys, monkeypatch):
    monkeypatch.setenv("AUTHENTIK_TOKEN", "wrong")
    status = main(["replay", str(capture_file), "--target", served.url, "--speed", "max"])
    err = capsys.readouterr().err
    assert status == 3 and "refused the handshake with HTTP 403" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--map", "unknown=x"], "outpost unknown is not among the replayed connections"),
        (["--speed", "5000"], "speed 5000 is out of range"),
        (["--outpost", "nope"], "outpost nope is not in the capture"),
        (["--tokens", "/nonexistent/tokens"], "cannot read token file"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(capture_file, served, capsys, argv, message):
    status = main(["replay", str(capture_file), "--target", served.url, *argv])
    err = capsys.readouterr().err
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1


def test_missing_capture_exits_2(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "none"), "--target", "http://127.0.0.1:1"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_speed_and_lockstep_exclude_each_other(capture_file):
    with pytest.raises(SystemExit):
        main(["replay", str(capture_file), "--target", "http://127.0.0.1:1", "--speed", "2", "--lockstep"])


def test_mapping_and_filters(capture_file, tmp_path, capsys):
    with ReplayServer(capture_file, mapping=[f"{PK}=new-pk"]).start_in_thread() as handle:
        status = main(
            [
                "replay",
                str(capture_file),
                "--target",
                handle.url,
                "--speed",
                "max",
                "--map",
                f"{PK}=new-pk",
                "--endpoint",
                "outpost",
                "--check",
            ]
        )
    stdout = capsys.readouterr().out
    assert status == 0 and "replayed 2 connection(s)" in stdout


def test_a_file_that_is_not_a_capture_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"this is not parquet")
    assert main(["replay", str(bad), "--target", "http://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "is not a readable Parquet file" in err and "Traceback" not in err


def test_a_connection_cut_in_the_capture_is_replayed_and_noted(tmp_path, t0, capsys):
    from replay_support import HELLO

    from wsreplay.events import ConnectionLog
    from wsreplay.protocol import encode_ack
    from wsreplay.schema import rows_to_table, table_to_frames

    log = ConnectionLog("cap", f"/ws/outpost/{PK}/", conn_id="cut")
    rows = [
        log.open(t0),
        log.message(t0 + 1_000_000, "to_server", HELLO),
        log.message(t0 + 2_000_000, "to_peer", encode_ack()),
    ]
    path = wsreplay.save(table_to_frames(rows_to_table(rows)), tmp_path / "cut")
    with ReplayServer(path).start_in_thread() as handle:
        status = main(["replay", str(path), "--target", handle.url, "--check"])
    captured = capsys.readouterr()
    assert status == 0, captured.out
    assert "note: connection cut" in captured.err and "no close in the capture" in captured.err
    assert "replay check passed: 1 connection(s), 1 recorded server frame(s)" in captured.out
