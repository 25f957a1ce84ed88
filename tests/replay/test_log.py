"""The replay drivers' fast row builders give exactly the foundation's rows."""

from __future__ import annotations

from replay_support import HELLO, PK

from wsreplay.events import ConnectionLog
from wsreplay.protocol import encode_ack
from wsreplay.replay._log import MemoLog, rows_table
from wsreplay.schema import rows_to_table


def test_memo_log_rows_equal_connection_log_rows(t0):
    frames = [
        ("to_server", HELLO, None),
        ("to_peer", encode_ack(), None),
        ("to_server", HELLO, None),
        ("to_server", "not json", None),
        ("to_server", b"\x00bin", None),
        ("to_server", b"\xff bad utf-8", "text"),
        ("to_server", "\ud800 lone surrogate", None),
    ]
    cache: dict = {}
    for query in ("", "instance_uuid=q"):
        base = ConnectionLog("cap", f"/ws/outpost/{PK}/", query, conn_id="c")
        memo = MemoLog("cap", f"/ws/outpost/{PK}/", query, conn_id="c", cache=cache)
        for k, (direction, data, opcode) in enumerate(frames):
            assert memo.message(t0 + k, direction, data, opcode=opcode) == base.message(
                t0 + k, direction, data, opcode=opcode
            )
    assert len(cache) == 3  # HELLO, ACK and the malformed text, once each


def test_rows_table_equals_rows_to_table(t0):
    log = ConnectionLog("cap", f"/ws/outpost/{PK}/", "instance_uuid=i", conn_id="c")
    rows = [
        log.open(t0, status=101, user_agent="ua", peer="127.0.0.1:1"),
        log.message(t0 + 1, "to_server", HELLO),
        log.message(t0 + 2, "to_peer", b"\x00"),
        log.error(t0 + 3, "refused", status=403),
        log.close(t0 + 4, "to_peer", code=1006),
    ]
    assert rows_table(rows).equals(rows_to_table(rows))
