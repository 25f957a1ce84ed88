"""Batch decoding at flush time gives the rows the per-frame decoder gives, on real and simulated traffic."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pandas as pd
import pyarrow as pa
from tests_support import real_frames

from wsreplay import load
from wsreplay.events import ConnectionLog
from wsreplay.record.batch import COMPRESSED, Coded, KindCache, entries_to_batch
from wsreplay.schema import SCHEMA, rows_to_table
from wsreplay.store.batches import batch_to_table

SAMPLES = Path(__file__).parents[2] / "sample_captures"
CODED = ("conn_id", "endpoint", "path", "outpost_uuid", "instance_uuid", "event", "direction", "instruction", "level")


class Twin:
    """The same connection logged twice: per frame (``ConnectionLog.message``) and as queue entries."""

    def __init__(self, path: str, conn_id: str) -> None:
        self.eager = ConnectionLog("cap", path, conn_id=conn_id, cache={})
        self.lazy = ConnectionLog("cap", path, conn_id=conn_id)
        self.rows: list[dict] = []
        self.entries: list = []

    def open(self, ts: int) -> None:
        self.rows.append(self.eager.open(ts))
        self.entries.append(self.lazy.open(ts))

    def message(self, ts: int, direction: str, data: bytes, opcode: str, compressed: bool = False) -> None:
        row = self.eager.message(ts, direction, data, opcode=opcode)
        if compressed:
            row["parse_error"] = COMPRESSED
        self.rows.append(row)
        self.entries.append((self.lazy, ts, self.lazy.seq, direction, opcode, data, compressed))
        self.lazy.seq += 1

    def close(self, ts: int, direction: str, code: int | None) -> None:
        self.rows.append(self.eager.close(ts, direction, code=code))
        self.entries.append((self.lazy, self.lazy.close(ts, direction, code=code)))


def interleave(twins: list[Twin], rng: random.Random) -> tuple[list[dict], list]:
    """All connections' events in one queue, interleaved at random but in order within each connection."""
    rows, entries = [], []
    cursors = [0] * len(twins)
    live = [i for i, t in enumerate(twins) if t.rows]
    while live:
        i = rng.choice(live)
        rows.append(twins[i].rows[cursors[i]])
        entries.append(twins[i].entries[cursors[i]])
        cursors[i] += 1
        if cursors[i] == len(twins[i].rows):
            live.remove(i)
    return rows, entries


def batched(entries: list, rng: random.Random, kinds: KindCache | None = None) -> pa.Table:
    """The entries decoded in batches of random sizes (flushes), one decode cache (and *kinds*) across them."""
    cache: dict = {}
    tables, start = [], 0
    while start < len(entries):
        size = rng.randint(1, 64)
        coded = Coded(CODED)
        table = batch_to_table(entries_to_batch(entries[start : start + size], cache, kinds, coded))
        # the keys and values handed to row observers are the table's columns
        assert coded.rows == table.num_rows and list(coded.ts) == table["ts"].cast(pa.int64()).to_pylist()
        for name, (per, keys) in coded.columns.items():
            assert [per[k] for k in keys] == table[name].to_pylist(), name
        tables.append(table)
        start += size
    return pa.concat_tables(tables) if tables else SCHEMA.empty_table()


def assert_same(twins: list[Twin], seed: int) -> int:
    rng = random.Random(seed)
    rows, entries = interleave(twins, rng)
    eager = rows_to_table(rows)
    # kinds built per batch; kept across batches (as the sink does); kept and cleared now and then
    for kinds in (None, KindCache(), KindCache(limit=5)):
        lazy = batched(copy.deepcopy(entries), random.Random(seed), kinds)  # decoding fills the logs in
        assert lazy.schema == SCHEMA
        assert lazy.to_pylist() == eager.to_pylist()
        assert lazy.equals(eager)
    return len(rows)


def test_real_traffic_gives_the_same_rows():
    twins: dict[str, Twin] = {}
    ts = 0
    for rec in real_frames():
        ts += 1_000
        # no instance_uuid in the path: it comes from the HELLO, decoded later, and must reach the close row
        twin = twins.setdefault(rec["scenario"], Twin(rec.get("path") or "/ws/outpost/pk/", rec["scenario"]))
        if not twin.rows:
            twin.open(ts)
        direction = "to_server" if rec["direction"] == "client->server" else "to_peer"
        if rec["kind"] == "text":
            twin.message(ts, direction, rec["data"].encode(), "text")
        elif rec["kind"] == "binary":
            twin.message(ts, direction, bytes.fromhex(rec["data"]) if "data" in rec else b"\x00\xff", "binary")
        elif rec["kind"] == "close":
            twin.close(ts, direction, 1000)
    extra = Twin("/ws/client/", "odd")
    extra.open(1)
    extra.message(2, "to_server", b"\xff\xfe not utf-8", "text")
    extra.message(3, "to_server", b'{"instruction": 0}', "text", compressed=True)
    extra.message(4, "to_peer", b"", "binary")
    extra.close(5, "to_peer", None)
    n = assert_same([*twins.values(), extra], seed=1)
    assert n > 100


def test_simulated_fleet_gives_the_same_rows():
    frames = load(SAMPLES / "fleet_day").sort_values(["conn_id", "seq"])
    twins = []
    for conn_id, all_rows in frames.groupby("conn_id", observed=True):
        # each connection's start (where its instance is announced) and its end
        rows = all_rows if len(all_rows) <= 150 else pd.concat([all_rows.head(150), all_rows.tail(3)])
        first = rows.iloc[0]
        path = first.path + ("?" + first.query if isinstance(first.query, str) and first.query else "")
        twin = Twin(path, str(conn_id))
        for row in rows.itertuples():
            ts = int(row.ts.value)
            if row.event == "open":
                twin.open(ts)
            elif row.event == "message":
                data = row.payload.encode() if isinstance(row.payload, str) else bytes(row.payload_bytes)
                twin.message(ts, row.direction, data, row.opcode)
            elif row.event == "close":
                twin.close(ts, row.direction, None if row.close_code is pa.NA else int(row.close_code))
        twins.append(twin)
    assert assert_same(twins, seed=2) > 1_000
