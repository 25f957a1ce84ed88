"""Outage semantics on literal captures: up/down, policies, causes, levels, window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_support import Capture, at

import wsreplay
from wsreplay.analysis import CAUSES, outages
from wsreplay.exceptions import CaptureFormatError, ConfigurationError

pytestmark = pytest.mark.usefixtures("implementation")  # the C kernels and their numpy versions


def _one(df: pd.DataFrame) -> pd.Series:
    assert len(df) == 1, df
    return df.iloc[0]


def test_silent_outage_starts_when_the_state_expires_in_both_policies(cap: Capture):
    c = cap.outpost("pk", "A").open(0)
    c.hellos(0, 50)  # last HELLO at 40
    c.hellos(90, 121)
    frames = cap.frames()
    for policy in ("observed", "authentik"):
        o = _one(outages(frames, policy=policy))
        assert o["start"] == at(40 + 15) and o["end"] == at(90)
        assert o["cause"] == "silent" and o["duration_s"] == 35.0 and not o["ongoing"]
        assert o["instance_uuid"] == "A" and o["outpost_uuid"] == "pk" and o["level"] == "instance"


def test_disconnect_starts_at_the_broken_connection_when_observed(cap: Capture):
    c1 = cap.outpost("pk", "A").open(0).hellos(0, 41)  # last HELLO at 40
    c1.error(42.5)
    cap.outpost("pk", "A").open(47).hellos(48, 100)
    frames = cap.frames()
    o = _one(outages(frames))
    assert (o["start"], o["end"], o["cause"]) == (at(42.5), at(48), "disconnect")
    # authentik still listed the instance: its state (refreshed at 40) lived until 55
    assert outages(frames, policy="authentik").empty


def test_long_disconnect_under_the_authentik_policy_starts_at_expiry(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 41).close(42, code=1006)
    cap.outpost("pk", "A").open(79).hellos(80, 120)
    o = _one(outages(cap.frames(), policy="authentik"))
    assert (o["start"], o["end"], o["cause"]) == (at(55), at(80), "disconnect")


def test_upstream_close_is_its_own_cause(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 41).close(41, "to_peer", code=1012)
    cap.outpost("pk", "A").open(44).hellos(45, 90)
    o = _one(outages(cap.frames()))
    assert (o["start"], o["end"], o["cause"]) == (at(41), at(45), "upstream_close")


def test_restart_retires_the_instance_and_is_an_outpost_outage(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 41, version="2024.2.1").close(42, code=1000)
    cap.outpost("pk", "B").open(50).hellos(50, 100, version="2024.2.1")
    frames = cap.frames()
    assert outages(frames, level="instance").empty  # A retired cleanly, B never went down
    o = _one(outages(frames, level="outpost"))
    assert (o["start"], o["end"], o["cause"], o["instance_uuid"]) == (at(42), at(50), "restart", "A")
    assert o["level"] == "outpost"


def test_a_new_version_after_a_restart_is_an_upgrade(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 41, version="2024.2.1").close(42, code=1000)
    cap.outpost("pk", "B").open(50).hellos(50, 100, version="2024.4.2")
    o = _one(outages(cap.frames(), level="outpost"))
    assert o["cause"] == "upgrade" and o["end"] == at(50)


def test_outpost_is_up_while_any_replica_is_up(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 100)
    b = cap.outpost("pk", "B").open(0).hellos(3, 30)  # B silent from 23+15=38 ...
    b.hellos(63, 100)
    frames = cap.frames()
    o = _one(outages(frames, level="instance"))
    assert (o["instance_uuid"], o["start"], o["end"]) == ("B", at(38), at(63))
    assert outages(frames, level="outpost").empty


def test_time_before_first_seen_is_unobserved_and_the_end_is_ongoing(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 100)  # last HELLO 90, capture ends at 150
    cap.outpost("pk", "B").open(60).hellos(60, 141).close(150)  # starts late: not down before
    frames = cap.frames()
    o = _one(outages(frames))
    assert o["instance_uuid"] == "A" and o["start"] == at(105) and o["end"] == at(150)
    assert o["ongoing"] and o["cause"] == "silent"


def test_start_and_end_clip_the_window(cap: Capture):
    c = cap.outpost("pk", "A").open(0).hellos(0, 50)
    c.hellos(90, 200)
    frames = cap.frames()
    o = _one(outages(frames, start=at(60), end=at(100)))
    assert (o["start"], o["end"], o["ongoing"]) == (at(60), at(90), False)
    o = _one(outages(frames, end=at(70)))
    assert (o["start"], o["end"], o["ongoing"]) == (at(55), at(70), True)
    assert outages(frames, start=at(100)).empty
    with pytest.raises(ConfigurationError):
        outages(frames, start=at(100), end=at(50))


def test_jitter_of_twenty_percent_is_no_outage(cap: Capture):
    rng = np.random.default_rng(3)
    t, c = 0.0, cap.outpost("pk", "A").open(0)
    while t < 3600:
        c.hello(t)
        t += 10 * (1 + rng.uniform(-0.2, 0.2))
    assert outages(cap.frames()).empty


def test_interval_is_inferred_per_instance_or_given(cap: Capture):
    fast = cap.outpost("pk", "A").open(0).hellos(0, 20, every=0.2)
    fast.hellos(21, 30, every=0.2)  # 1 s gap: > 1.5 * 0.2 s
    frames = cap.frames()
    o = _one(outages(frames))
    assert o["start"] == at(19.8 + 0.3) and o["end"] == at(21)
    assert outages(frames, interval=10).empty  # with authentik's 10 s nothing is down
    assert outages(frames, interval="1s", factor=0.5).empty is False


def test_frames_that_did_not_decode_never_refresh_and_are_counted(cap: Capture):
    c = cap.outpost("pk", "A").open(0).hellos(0, 41)
    for t in (45, 50, 55, 60):
        c.send(t, "to_server", "not json")
    c.hellos(70, 100)
    frames = cap.frames()
    o = _one(outages(frames))
    assert (o["start"], o["end"]) == (at(55), at(70))
    assert o.name == 0 and outages(frames).attrs["parse_errors"] == 4


def test_the_input_is_not_modified_and_pipe_composes(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 41).error(42)
    cap.outpost("pk", "A").open(50).hellos(50, 90)
    frames = cap.frames()
    before = frames.copy()
    result = frames.pipe(outages, level="outpost", policy="observed")
    pd.testing.assert_frame_equal(frames, before)
    assert list(result.columns) == [
        "level",
        "outpost_uuid",
        "instance_uuid",
        "start",
        "end",
        "duration_s",
        "cause",
        "ongoing",
    ]
    assert list(result["cause"].cat.categories) == list(CAUSES)
    assert str(result["start"].dtype) == "datetime64[ns, UTC]"


def test_plain_string_columns_give_the_same_answer(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 41).close(42, code=1006)
    cap.outpost("pk", "A").open(50).hellos(50, 90)
    frames = cap.frames()
    plain = frames.astype({c: "str" for c in frames.columns if isinstance(frames[c].dtype, pd.CategoricalDtype)})
    pd.testing.assert_frame_equal(outages(frames), outages(plain))


def test_empty_and_client_only_captures_give_empty_results(cap: Capture):
    assert outages(wsreplay.schema.empty_frames()).empty
    cap.client().open(0).notice(1, "hello")
    out = outages(cap.frames(), level="outpost")
    assert out.empty and "cause" in out.columns


def test_a_column_subset_is_enough_and_missing_columns_say_which(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 41).close(42, code=1006)
    cap.outpost("pk", "A").open(50).hellos(50, 90)
    frames = cap.frames()
    needed = wsreplay.analysis.COLUMNS_NEEDED["outages"]
    pd.testing.assert_frame_equal(outages(frames[list(needed)]), outages(frames))
    with pytest.raises(CaptureFormatError, match="instruction_name"):
        outages(frames.drop(columns="instruction_name"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"level": "fleet"}, "level"),
        ({"policy": "strict"}, "policy"),
        ({"factor": 0}, "factor"),
        ({"interval": -1}, "interval"),
        ({"interval": "soon"}, "interval"),
        ({"start": "yesterday-ish"}, "start"),
    ],
)
def test_bad_options_are_one_line_errors(cap: Capture, kwargs, match):
    cap.outpost("pk", "A").open(0).hellos(0, 30)
    with pytest.raises(ConfigurationError, match=match):
        outages(cap.frames(), **kwargs)


def test_a_crashed_instance_retires_at_its_exit_and_the_outpost_carries_the_gap(cap: Capture):
    # issue #12: a process killed (TCP reset, 1006) comes back as a new instance uuid
    cap.outpost("pk", "A").open(0).hellos(0, 101).close(105, code=1006)
    cap.outpost("pk", "B").open(113).hellos(113, 600)
    frames = cap.frames()
    assert outages(frames, level="instance").empty  # A no longer exists; B never went down
    o = _one(outages(frames, level="outpost"))
    assert (o["start"], o["end"], o["cause"], o["instance_uuid"]) == (at(105), at(113), "crash", "A")
    u = wsreplay.uptime(frames).set_index("instance_uuid")
    assert u.loc["A", "end"] == at(105) and u.loc["A", "uptime"] == 1.0


def test_an_error_row_without_close_also_retires_a_process_that_never_comes_back(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 41).error(42.5)
    cap.outpost("pk", "B").open(60).hellos(60, 200)
    frames = cap.frames()
    assert outages(frames, level="instance").empty
    assert _one(outages(frames, level="outpost"))["cause"] == "crash"


def test_a_broken_instance_that_tries_again_is_not_retired(cap: Capture):
    # the same instance opens a new connection that breaks before any HELLO: still alive, still down
    cap.outpost("pk", "A").open(0).hellos(0, 41).close(42, code=1006)
    cap.outpost("pk", "A").open(60).error(60.5)
    cap.outpost("pk2", "Z").open(0).hellos(0, 200)
    o = _one(outages(cap.frames(), level="instance"))
    assert (o["instance_uuid"], o["start"], o["end"], o["ongoing"]) == ("A", at(42), at(190.003), True)


def test_a_hung_process_that_then_crashes_is_down_until_its_exit(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 41).close(80, code=1006)  # hung from 55, killed at 80
    cap.outpost("pk", "B").open(90).hellos(90, 200)
    o = _one(outages(cap.frames(), level="instance"))
    assert (o["instance_uuid"], o["start"], o["end"], o["cause"], o["ongoing"]) == (
        "A",
        at(55),
        at(80),
        "silent",
        False,
    )


def test_an_interval_that_changes_mid_capture_is_no_silent_outage(cap: Capture):
    c = cap.outpost("pk", "A").open(0)
    c.hellos(0, 300, every=10).hellos(300, 900, every=30)  # the interval grows to 30 s at 300
    c.hellos(900, 1200, every=10)  # and shrinks back
    frames = cap.frames()
    assert outages(frames).empty
    # a real hang is still found, judged by the cadence around it
    c.hellos(1200, 1241, every=10).hellos(1300, 1400, every=10)
    o = _one(outages(cap.frames()))
    assert (o["start"], o["end"], o["cause"]) == (at(1255), at(1300), "silent")


def test_a_shorter_local_cadence_never_lowers_the_expected_interval(cap: Capture):
    c = cap.outpost("pk", "A").open(0)
    c.hellos(0, 600, every=30).hellos(600, 700, every=10)  # median 30 s, then 10 s
    c.hellos(740, 800, every=10)  # 50 s without HELLO: judged by the base, 1.5 x 30 s
    o = _one(outages(cap.frames()))
    assert (o["start"], o["end"]) == (at(690 + 45), at(740))


def test_span_gives_a_part_of_a_capture_the_capture_s_window(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 41)  # silent from 55 until the capture ends at 300
    cap.outpost("pk2", "B").open(0).hellos(0, 301)
    frames = cap.frames()
    part = frames[frames["outpost_uuid"] == "pk"]
    whole = outages(frames)
    assert outages(part).empty  # alone, A's frames end at 40.003: nothing seems wrong
    pd.testing.assert_frame_equal(outages(part, span=(at(0), at(300.003))), whole)
    u = wsreplay.uptime(part, span=(at(0), at(300.003)))
    pd.testing.assert_frame_equal(u, wsreplay.uptime(frames).iloc[:1])
    with pytest.raises(ConfigurationError):
        outages(part, span=(at(10), at(5)))
