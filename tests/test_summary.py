"""summarize: the text and HTML summary of a capture."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from wsreplay import ConnectionLog, summarize
from wsreplay.protocol import encode_ack, encode_hello, hello_args
from wsreplay.schema import empty_frames, rows_to_table, table_to_frames
from wsreplay.summary import _counts


def test_counts(t0):
    a = ConnectionLog("cap", "/ws/outpost/pk/?instance_uuid=i1")
    c = ConnectionLog("cap", "/ws/client/")
    rows = [
        a.open(t0),
        a.message(t0 + 10**9, "to_server", encode_hello(hello_args(uuid="i1", version="1"))),
        a.message(t0 + 2 * 10**9, "to_peer", encode_ack()),
        a.message(t0 + 3 * 10**9, "to_server", "{oops"),
        a.close(t0 + 4 * 10**9, "to_peer", code=None),
        c.open(t0),
    ]
    s = summarize(table_to_frames(rows_to_table(rows)))
    assert (s.events, s.connections, s.outposts, s.instances, s.parse_errors) == (6, 2, 1, 1, 1)
    assert s.by_endpoint == {"outpost": 5, "client": 1}
    assert s.by_instruction == {"HELLO": 1, "ACK": 1}
    assert s.duration_s == 4.0
    text = str(s)
    assert "parse errors" in text and "not JSON" in text
    html = s._repr_html_()
    assert html.startswith("<table") and "<th" in html and "HELLO 1" in html


def test_empty():
    s = summarize(empty_frames())
    assert s.events == 0 and s.start is None and "empty" in str(s)


@settings(deadline=None)
@given(st.lists(st.sampled_from(["HELLO", "ACK", "TRIGGER_UPDATE", "x", None]), max_size=40))
def test_categorical_counts_are_those_of_the_strings_in_the_same_order(values):
    """Counting a categorical on its codes gives what counting its values as strings gives, ties included."""
    series = pd.Series(values, dtype="category")
    strings = series.dropna().astype(str).value_counts()
    assert list(_counts(series).items()) == [(str(k), int(v)) for k, v in strings.items()]
