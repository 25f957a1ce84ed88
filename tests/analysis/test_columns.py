"""The columns each analysis needs: a column subset loaded from disk is enough."""

from __future__ import annotations

import pandas as pd
import pytest
from analysis_support import Capture

import wsreplay
from wsreplay.analysis import COLUMNS_NEEDED, columns_for
from wsreplay.exceptions import ConfigurationError, UndecodedFramesError
from wsreplay.schema import COLUMNS


def test_every_needed_column_is_a_capture_column():
    for fn, cols in COLUMNS_NEEDED.items():
        assert hasattr(wsreplay, fn), fn
        assert set(cols) <= set(COLUMNS), fn
    assert columns_for() == [c for c in COLUMNS if c in {x for v in COLUMNS_NEEDED.values() for x in v}]
    with pytest.raises(ConfigurationError):
        columns_for("nope")


def test_analyses_on_a_column_subset_match_the_full_capture(cap: Capture, tmp_path):
    a = cap.outpost("pk", "A").open(0).hellos(0, 40, version="2024.2.1")
    a.close(41, code=1006)
    cap.outpost("pk", "A").open(45).hellos(46, 90).trigger(50)
    cap.client().open(0).notice(3, "hi")
    path = wsreplay.save(cap.frames(), tmp_path / "cap")
    full = wsreplay.load(path)
    for fn, cols in COLUMNS_NEEDED.items():
        sub = wsreplay.load(path, columns=list(cols))
        func = getattr(wsreplay, fn)
        pd.testing.assert_frame_equal(func(sub), func(full), check_like=False, obj=fn)


def _as_str(df: pd.DataFrame) -> pd.DataFrame:
    cats = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)]
    return df.astype({c: "str" for c in cats}).reset_index(drop=True)


def test_every_analysis_gives_the_same_answer_on_plain_string_columns(cap: Capture):
    a = cap.outpost("pk", "A").open(0).hellos(0, 40, version="2024.2.1")
    a.close(41, code=1006)
    cap.outpost("pk", "A").open(45).hellos(46, 90).trigger(50)
    cap.outpost("pk", "B").open(95).hellos(95, 120, version="2024.4.2")
    cap.client().open(0).notice(3, "hi")
    frames = cap.frames()
    plain = _as_str(frames)
    for fn in COLUMNS_NEEDED:
        func = getattr(wsreplay, fn)
        pd.testing.assert_frame_equal(_as_str(func(frames)), _as_str(func(plain)), check_dtype=False, obj=fn)


def _undecoded(cap: Capture) -> pd.DataFrame:
    """Frames as a converter with only ``payload`` would build them: the parsed columns all null."""
    cap.outpost("pk", "A").open(0).hellos(0, 60)
    cap.client().open(0).notice(3, "hi")
    frames = cap.frames()
    for col in ("instruction", "instruction_name", "version", "message_type", "level", "message", "parse_error"):
        frames[col] = frames[col].where(pd.Series(False, index=frames.index))
    return frames


@pytest.mark.parametrize("fn", ["outages", "uptime", "ack_latency", "hello_intervals", "fleet", "notice_frequency"])
def test_undecoded_frames_are_a_clear_error_not_an_empty_result(cap: Capture, fn):
    # issue #12: a frames table with only ``payload`` used to give empty results silently
    frames = _undecoded(cap)
    with pytest.raises(UndecodedFramesError, match=r"wsreplay.save|decode"):
        getattr(wsreplay, fn)(frames)
    assert issubclass(UndecodedFramesError, wsreplay.WSReplayError)


def test_frames_that_all_failed_to_decode_are_no_error(cap: Capture):
    c = cap.outpost("pk", "A").open(0)
    for t in (1, 2, 3):
        c.send(t, "to_server", "not json")
    out = wsreplay.outages(cap.frames())
    assert out.empty and out.attrs["parse_errors"] == 3
