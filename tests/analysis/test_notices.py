"""Notice counts per time bin and the most frequent notices."""

from __future__ import annotations

import pandas as pd
import pytest
from analysis_support import Capture, at

from wsreplay.analysis import notice_frequency, top_messages
from wsreplay.exceptions import ConfigurationError
from wsreplay.protocol import encode_session_authenticated


def _browsers(cap: Capture) -> pd.DataFrame:
    b1 = cap.client().open(0)
    b2 = cap.client().open(0)
    for b in (b1, b2):
        b.notice(10, "saved", "success").notice(20, "saved", "success").notice(130, "denied", "error")
    b1.send(70, "to_peer", encode_session_authenticated())
    b1.send(75, "to_peer", "garbage")
    cap.outpost("pk", "A").open(0).hellos(0, 100)  # outpost frames are not notices
    return cap.frames()


def test_counts_per_bin_by_level_include_empty_bins(cap: Capture):
    frames = _browsers(cap)
    f = notice_frequency(frames, freq="1min")
    assert list(f.columns) == ["(none)", "error", "success"]
    assert f.index.name == "time" and str(f.index.dtype) == "datetime64[ns, UTC]"
    assert f.index[0] == at(0).floor("1min") and len(f) == 3
    assert f["success"].tolist() == [4, 0, 0] and f["error"].tolist() == [0, 0, 2]
    assert f["(none)"].sum() == 2 and int(f.to_numpy().sum()) == 8


def test_counts_by_message_type_or_total(cap: Capture):
    frames = _browsers(cap)
    by_type = notice_frequency(frames, freq="1h", by="message_type")
    assert by_type.iloc[0].to_dict() == {"(none)": 1, "message": 6, "session.authenticated": 1}
    total = notice_frequency(frames, freq="30s", by=None)
    assert list(total.columns) == ["frames"] and total["frames"].sum() == 8
    with pytest.raises(ConfigurationError):
        notice_frequency(frames, freq="sometimes")


def test_empty_capture_gives_an_empty_table(cap: Capture):
    cap.outpost("pk", "A").open(0).hellos(0, 30)
    assert notice_frequency(cap.frames()).empty


def test_top_messages(cap: Capture):
    frames = _browsers(cap)
    top = top_messages(frames, n=2)
    assert list(top.columns) == ["message_type", "level", "message", "frames", "first_seen", "last_seen"]
    first = top.iloc[0]
    assert (first["message"], first["level"], first["frames"]) == ("saved", "success", 4)
    assert (first["first_seen"], first["last_seen"]) == (at(10), at(20))
    assert top.iloc[1]["message"] == "denied" and len(top) == 2
    assert len(top_messages(frames, n=0)) == 4
    assert top_messages(frames, by=["level"]).iloc[0]["frames"] == 4
