"""Helpers of the store tests: a small fleet's capture rows, the identity of loaded rows, a writer raced by threads."""

from __future__ import annotations

import threading
import time

import pandas as pd

from wsreplay import CaptureWriter, ConnectionLog
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


def write_beside(
    writer: CaptureWriter, threads: list[threading.Thread], done: threading.Event, *, t0: int, rounds: int, size: int
) -> int:
    """Write *rounds* hours of a *size*-outpost fleet while *threads* run (a short pause every 10 rounds).

    Then close the writer, set *done* and join the threads, whatever happened; returns the rows written.
    """
    for thread in threads:
        thread.start()
    written = 0
    try:
        for n in range(rounds):
            rows = fleet_rows(t0 + n * HOUR, outposts=size, hellos=size)
            writer.write_many(rows)
            written += len(rows)
            if n % 10 == 0:
                time.sleep(0.01)
    finally:
        writer.close()
        done.set()
        for thread in threads:
            thread.join()
    return written
