"""Client replay against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket

import pytest
from replay_support import HELLO, PK, TOKEN

import wsreplay
from wsreplay.exceptions import ConfigurationError
from wsreplay.playback import Matcher, ReplayServer, replay, replay_async
from wsreplay.playback.run import target_base
from wsreplay.protocol import encode_trigger_update

TOKENS = {PK: TOKEN}


def test_round_trip_against_the_served_capture_passes_the_check(capture, tmp_path):
    async def main():
        async with ReplayServer(capture, tokens=TOKEN) as server:
            return await replay_async(capture, server.url, speed=10, tokens=TOKENS, check=True, out=tmp_path / "out")

    result = asyncio.run(main())
    assert result.check is not None and result.check.ok, result.check
    assert result.exit_status() == 0 and result.problems == []
    outcomes = dict(zip(result.connections["conn_id"], result.connections["outcome"]))
    assert outcomes == {"conn-a": "ok", "conn-b": "closed", "conn-c": "ok"}
    assert result.connections["as_recorded"].all()
    # everything observed is a capture with the same schema
    saved = wsreplay.load(tmp_path / "out")
    assert list(saved.columns) == list(result.frames.columns)
    assert len(saved) == len(result.frames)
    sent = saved[(saved["event"] == "message") & (saved["direction"] == "to_server")]
    assert sorted(sent["instruction_name"].dropna()) == ["HELLO", "HELLO", "HELLO"]
    assert set(saved.loc[saved["event"] == "close", "close_code"]) == {1000, 1006}
    assert len(result.timing) == 4 and result.timing["scheduled_s"].notna().all()


def test_a_server_answering_differently_fails_with_a_diff(capture, mini):
    async def main():
        async with mini(answer=encode_trigger_update()) as server:
            return await replay_async(capture, server.url, speed="max", tokens=TOKENS, check=True, reply_timeout=0.3)

    result = asyncio.run(main())
    assert result.check is not None and not result.check.ok
    assert result.exit_status() == 1
    text = str(result.check)
    assert "connection conn-a" in text and "frame #1" in text
    assert "expected ACK" in text and "TRIGGER_UPDATE" in text


def test_payload_check_names_the_field(capture, mini):
    answer = '{"instruction": 0, "args": {"server": "new"}}'

    async def main():
        async with mini(answer=answer) as server:
            return await replay_async(capture, server.url, speed="max", tokens=TOKENS)

    result = asyncio.run(main())
    assert result.compare().ok  # the names still match
    report = result.compare(Matcher(compare="payload"))
    assert not report.ok and "args.server: unexpected" in str(report)
    with pytest.raises(wsreplay.ReplayMismatchError, match=r"args\.server"):
        wsreplay.assert_replay_matches(result, Matcher(compare="payload"))


def test_a_server_that_does_not_drop_malformed_frames_is_a_mismatch(capture, mini):
    async def main():
        async with mini(drop_malformed=False) as server:
            return await replay_async(
                capture, server.url, speed="max", tokens=TOKENS, connection="conn-b", check=True, reply_timeout=0.3
            )

    result = asyncio.run(main())
    assert not result.check.ok
    assert "expected the server to drop the connection without a close frame (1006)" in str(result.check)
    assert any("stayed open" in note for note in result.notes)


def test_binary_frames_are_sent_as_binary(t0, mini):
    from replay_support import literal_capture  # noqa: F401  (same module as the fixtures)

    from wsreplay.events import ConnectionLog
    from wsreplay.schema import rows_to_table, table_to_frames

    log = ConnectionLog("cap", f"/ws/outpost/{PK}/", conn_id="bin")
    rows = [log.open(t0), log.message(t0 + 1, "to_server", b"\x00\x01"), log.close(t0 + 2, "to_peer", code=1006)]
    frames = table_to_frames(rows_to_table(rows))

    async def main():
        async with mini() as server:
            result = await replay_async(frames, server.url, speed="max", tokens=TOKENS, check=True)
            return result, server.received

    result, received = asyncio.run(main())
    assert [(p.partition("?")[0], m) for p, m in received] == [(f"/ws/outpost/{PK}/", b"\x00\x01")]
    assert result.check.ok  # the abrupt close the capture saw came back


def test_lockstep_waits_for_the_recorded_replies(capture, mini):
    async def main():
        async with mini(reply_delay=0.05) as server:
            return await replay_async(capture, server.url, lockstep=True, tokens=TOKENS, connection="conn-a")

    result = asyncio.run(main())
    f = result.frames[result.frames["event"] == "message"]
    order = list(zip(f["direction"], f["instruction_name"]))
    # the second HELLO waited for the first ACK, whatever the delay
    assert order == [("to_server", "HELLO"), ("to_peer", "ACK"), ("to_server", "HELLO"), ("to_peer", "ACK")]
    assert result.lockstep and result.speed == float("inf")


def test_refused_handshake_is_reported_and_exits_3(capture, mini):
    async def main():
        async with mini() as server:
            return await replay_async(capture, server.url, speed="max", tokens={PK: "wrong"}, check=True)

    result = asyncio.run(main())
    refused = result.connections[result.connections["outcome"] == "refused"]
    assert set(refused["conn_id"]) == {"conn-a", "conn-b"} and set(refused["status"]) == {403}
    assert result.exit_status() == 3
    assert any("refused the handshake with HTTP 403" in p for p in result.problems)


def test_an_unreachable_target_stops_the_replay_without_hanging(capture):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = replay(capture, f"http://127.0.0.1:{port}", tokens=TOKENS)
    assert result.aborted and "unreachable" in result.aborted
    assert result.exit_status() == 3
    assert "not_replayed" in set(result.connections["outcome"])


def test_a_target_going_away_mid_replay(capture, mini):
    async def main():
        async with mini(go_away_after=2) as server:
            return await replay_async(capture, server.url, speed=20, tokens=TOKENS, check=True)

    result = asyncio.run(main())
    assert result.exit_status() == 3
    # connections closed by the shutdown (1000/1001), handshakes refused during it (503), or the port gone
    signs = ("the target closed the connection with", "refused the handshake with HTTP 503", "unreachable")
    assert result.problems and all(any(s in p for s in signs) for p in result.problems), result.problems


def test_tokens_come_from_the_environment_and_never_from_the_capture(capture, mini, monkeypatch):
    monkeypatch.setenv("AUTHENTIK_TOKEN", TOKEN)
    monkeypatch.setenv("AUTHENTIK_SESSION", "sess")

    async def main():
        async with mini() as server:
            await replay_async(capture, server.url, speed="max", check=True)
            return server.headers

    headers = asyncio.run(main())
    outpost = [h for h in headers if "Authorization" in h]
    client = [h for h in headers if "Cookie" in h]
    assert len(outpost) == 2 and all(h["Authorization"] == f"Bearer {TOKEN}" for h in outpost)
    assert client == [h for h in headers if h.get("Cookie") == "authentik_session=sess"] and len(client) == 1
    assert outpost[0]["User-Agent"] == "goauthentik.io/outpost/2023.10.0"  # the recorded one


def test_missing_token_is_a_clear_error(capture, monkeypatch):
    monkeypatch.delenv("AUTHENTIK_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match=f"no token for outpost {PK}: set AUTHENTIK_TOKEN"):
        replay(capture, "http://127.0.0.1:1")


def test_token_file(capture, mini, tmp_path, monkeypatch):
    monkeypatch.delenv("AUTHENTIK_TOKEN", raising=False)
    (tmp_path / "tokens").write_text(f"# pk=token\nnew-pk={TOKEN}\n")

    async def main():
        async with mini() as server:
            result = await replay_async(
                capture, server.url, speed="max", mapping=[f"{PK}=new-pk"], tokens_file=tmp_path / "tokens", check=True
            )
            return result, server.received

    result, received = asyncio.run(main())
    assert result.check.ok
    assert {path.partition("?")[0] for path, _ in received} == {"/ws/outpost/new-pk/"}


def test_blocking_twin_works_inside_a_running_loop(capture, mini):
    async def notebook_cell():
        async with mini() as server:
            # a Jupyter cell runs inside a loop: the blocking call must not fail or deadlock,
            # so it runs in its own thread and this loop keeps serving meanwhile
            return await asyncio.to_thread(replay, capture, server.url, speed="max", tokens=TOKENS, check=True)

    result = asyncio.run(notebook_cell())
    assert result.check.ok


def test_blocking_twin_called_directly_from_a_coroutine(capture):
    with ReplayServer(capture).start_in_thread() as handle:

        async def cell():
            return replay(capture, handle.url, speed="max", tokens=TOKENS, check=True)

        result = asyncio.run(cell())
    assert result.check.ok and len(result.frames) > 0


@pytest.mark.parametrize("bad", ["127.0.0.1:9000", "ftp://x", "http://"])
def test_bad_target(bad):
    with pytest.raises(ConfigurationError, match="is not a URL"):
        target_base(bad)


def test_progress_bar(capture, capsys):
    with ReplayServer(capture).start_in_thread() as handle:
        replay(capture, handle.url, speed="max", tokens=TOKENS, progress=True)
    assert "replay" in capsys.readouterr().err


def test_hello_frames_reach_the_target_byte_for_byte(capture, mini):
    async def main():
        async with mini() as server:
            await replay_async(capture, server.url, speed="max", tokens=TOKENS, connection="conn-a")
            return server.received

    assert [m for _, m in asyncio.run(main())] == [HELLO, HELLO]


def test_handshakes_recorded_as_refused_are_replayed_without_credentials(t0, mini):
    from wsreplay.events import ConnectionLog
    from wsreplay.schema import rows_to_table, table_to_frames

    log = ConnectionLog("cap", f"/ws/outpost/{PK}/", conn_id="refused")
    frames = table_to_frames(rows_to_table([log.error(t0, "handshake refused: HTTP 403", status=403)]))

    async def main():
        async with mini() as server:
            result = await replay_async(frames, server.url, tokens=TOKENS, check=True)
            return result, server.headers

    result, headers = asyncio.run(main())
    assert "Authorization" not in headers[0]
    assert result.check.ok and result.exit_status() == 0
    assert result.connections.loc[0, "outcome"] == "refused" and result.connections.loc[0, "as_recorded"]


def test_out_must_be_a_new_capture_directory(capture, capture_dir, tmp_path):
    out = tmp_path / "out"
    with ReplayServer(capture).start_in_thread() as handle:
        first = replay(capture, handle.url, speed="max", tokens=TOKENS, out=out)
        with pytest.raises(ConfigurationError, match="already holds a capture"):
            replay(capture, handle.url, speed="max", tokens=TOKENS, out=out)
    # with out=, result.frames is read back from the directory written
    assert len(first.frames) == len(wsreplay.load(out)) > 0
