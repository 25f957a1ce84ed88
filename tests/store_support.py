"""Helpers of the store tests: a small fleet's capture rows, and the identity of loaded rows."""

from __future__ import annotations

import pandas as pd

from wsreplay import ConnectionLog
from wsreplay.protocol import encode_ack, encode_hello, encode_notice, hello_args

HOUR = 3600 * 10**9


def fleet_rows(t0: int, outposts: int = 3, hellos: int = 5, step: int = HOUR // 4) -> list[dict]:
    rows = []
    for o in range(outposts):
        log = ConnectionLog("cap", f"/ws/outpost/pk{o}/?instance_uuid=i{o}&attempt=0")
        rows.append(log.open(t0 + o, user_agent="goauthentik.io/outpost/2023.10.0"))
        for i in range(hellos):
            ts = t0 + (i + 1) * step + o
            rows.append(log.message(ts, "to_server", encode_hello(hello_args(uuid=f"i{o}", version="2023.10.0"))))
            rows.append(log.message(ts + 2_000_000, "to_peer", encode_ack()))
        rows.append(log.close(t0 + (hellos + 1) * step + o, "to_server", code=1000))
    client = ConnectionLog("cap", "/ws/client/")
    rows.append(client.open(t0))
    rows.append(client.message(t0 + 5, "to_peer", encode_notice("Successfully logged in!", level="success")))
    return rows


def row_keys(frames: pd.DataFrame) -> list[tuple[str, int]]:
    """(conn_id, seq) of every row: what identifies a row across loads."""
    return list(zip(frames["conn_id"].astype(str), frames["seq"].astype(int), strict=True))
