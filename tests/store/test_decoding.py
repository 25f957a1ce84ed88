"""save() decodes the parsed columns of a frames table that only has payloads (wsreplay.store.decoding)."""

from __future__ import annotations

import pandas as pd
import pytest

import wsreplay
from wsreplay.events import ConnectionLog
from wsreplay.protocol import encode_ack, encode_hello, encode_notice, hello_args
from wsreplay.schema import rows_to_table, table_to_frames
from wsreplay.store.decoding import PARSED_COLUMNS

T0 = 1_795_838_763_000_000_000


def _recorded() -> pd.DataFrame:
    out = ConnectionLog("cap", "/ws/outpost/pk/", "", conn_id="c1")
    hello = encode_hello(hello_args(uuid="inst-1", version="2024.2.1", hostname="h"))
    rows = [out.open(T0, status=101)]
    for k in range(6):
        rows.append(out.message(T0 + k * 10**10, "to_server", hello))
        rows.append(out.message(T0 + k * 10**10 + 3 * 10**6, "to_peer", encode_ack()))
    rows.append(out.message(T0 + 61 * 10**9, "to_server", "not json"))
    rows.append(out.close(T0 + 62 * 10**9, "to_server", code=1006))
    client = ConnectionLog("cap", "/ws/client/", "", conn_id="b1")
    rows += [client.open(T0, status=101), client.message(T0 + 5, "to_peer", encode_notice("hi", level="warning"))]
    rows.sort(key=lambda r: (r["ts"], r["conn_id"], r["seq"]))
    return table_to_frames(rows_to_table(rows))


@pytest.mark.parametrize("how", ["missing", "null"])
def test_save_decodes_parsed_columns_from_payload(tmp_path, how):
    recorded = _recorded()
    bare = recorded.drop(columns=list(PARSED_COLUMNS)) if how == "missing" else recorded.copy()
    if how == "null":
        for col in PARSED_COLUMNS:
            bare[col] = bare[col].where(pd.Series(False, index=bare.index))
        # the instance uuid a HELLO named is a parsed column too (the open row got it from no query)
    path = wsreplay.save(bare, tmp_path / "bare")
    back = wsreplay.load(path)
    want = wsreplay.load(wsreplay.save(recorded, tmp_path / "recorded"))
    pd.testing.assert_frame_equal(back, want)
    assert back["instruction_name"].value_counts()["HELLO"] == 6
    assert back["parse_error"].notna().sum() == 1 and back["message_type"].notna().sum() == 1
    pd.testing.assert_frame_equal(wsreplay.outages(back), wsreplay.outages(want))


def test_save_keeps_parsed_columns_that_are_already_there(tmp_path):
    recorded = _recorded()
    recorded["version"] = recorded["version"].astype(object)
    recorded.loc[recorded["instruction_name"] == "HELLO", "version"] = "kept"
    back = wsreplay.load(wsreplay.save(recorded, tmp_path / "x"))
    assert set(back["version"].dropna()) == {"kept"}
