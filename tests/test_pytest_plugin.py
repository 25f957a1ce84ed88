"""The pytest plugin, run in a pytester sandbox (it is loaded through its pytest11 entry point)."""

from __future__ import annotations

import pytest
from replay_support import literal_capture

import wsreplay
from wsreplay.protocol import encode_ack, encode_session_end

pytest_plugins = ["pytester"]


@pytest.fixture
def captures(pytester, t0):
    """``good``: the literal capture; ``other``: the same with every ACK replaced by SESSION_END."""
    frames = literal_capture(t0)
    wsreplay.save(frames, pytester.path / "good.parquet")
    other = frames.copy()
    ack = other["payload"] == encode_ack()
    other.loc[ack, "payload"] = encode_session_end("s")
    other["instruction_name"] = other["instruction_name"].cat.add_categories(["SESSION_END"])
    other.loc[ack, "instruction_name"] = "SESSION_END"
    wsreplay.save(other, pytester.path / "other.parquet")
    return pytester


def test_options_are_in_their_own_group(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["wsreplay: serve and replay captured authentik WebSocket traffic:", "*--wsreplay-target=URL*"]
    )


def test_serve_and_replay_the_marked_capture(captures):
    captures.makepyfile(
        """
        import pytest
        import wsreplay

        @pytest.mark.wsreplay("good.parquet")
        def test_round_trip(wsreplay_server, wsreplay_replay):
            result = wsreplay_replay(target=wsreplay_server.url)
            wsreplay.assert_replay_matches(result)
            assert len(result.frames) > 0 and wsreplay_server.stats.connections == 3
            assert "open" in set(wsreplay_server.frames()["event"].astype(str))
        """
    )
    result = captures.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_different_server_fails_with_the_diff(captures):
    captures.makepyfile(
        """
        import pytest
        import wsreplay

        @pytest.mark.wsreplay("other.parquet")
        def test_against_changed_server(wsreplay_server, wsreplay_replay):
            result = wsreplay_replay("good.parquet", target=wsreplay_server.url, reply_timeout=0.3)
            wsreplay.assert_replay_matches(result)
        """
    )
    result = captures.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ReplayMismatchError*", "*connection conn-a*", "*frame #1*expected ACK*"])
    assert "SESSION_END" in result.stdout.str()


def test_target_option_and_overridden_capture_fixture(captures):
    from wsreplay.playback import serve

    handle = serve(captures.path / "good.parquet")
    try:
        captures.makeconftest(
            """
            import pytest

            @pytest.fixture
            def wsreplay_capture():
                return "good.parquet"
            """
        )
        captures.makepyfile(
            """
            import wsreplay

            def test_replay(wsreplay_replay, wsreplay_target):
                assert wsreplay_target.startswith("http://127.0.0.1:")
                result = wsreplay_replay(lockstep=True)
                assert result.lockstep
                wsreplay.assert_replay_matches(result)
            """
        )
        result = captures.runpytest("-p", "no:cacheprovider", f"--wsreplay-target={handle.url}")
    finally:
        handle.stop()
    result.assert_outcomes(passed=1)


def test_remote_targets_are_refused_by_default(captures):
    captures.makepyfile(
        """
        import pytest

        @pytest.mark.wsreplay("good.parquet")
        def test_remote(wsreplay_replay):
            wsreplay_replay(target="http://192.0.2.1:9000")
        """
    )
    result = captures.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*only talk to 127.0.0.1/localhost by default*--wsreplay-allow-remote*"])


def test_missing_capture_and_target_say_what_to_do(pytester):
    pytester.makepyfile(
        """
        def test_no_capture(wsreplay_server):
            pass

        def test_no_target(wsreplay_replay):
            wsreplay_replay(capture="whatever")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(["*no capture for the wsreplay fixtures: mark the test with @pytest.mark.wsreplay*"])
    result.stdout.fnmatch_lines(["*no replay target: pass --wsreplay-target URL*"])


def test_is_local():
    from wsreplay.pytest_plugin import is_local

    assert is_local("http://127.0.0.1:9") and is_local("ws://localhost/") and is_local("http://[::1]:80")
    assert not is_local("http://example.com") and not is_local("http://10.0.0.1")
