"""summarize: the text and HTML summary of a capture."""

from __future__ import annotations

from wsreplay import ConnectionLog, summarize
from wsreplay.protocol import encode_ack, encode_hello, hello_args
from wsreplay.schema import empty_frames, rows_to_table, table_to_frames


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
