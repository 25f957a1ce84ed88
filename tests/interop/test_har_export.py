"""Capture -> HAR -> capture round trips, and the shape DevTools and Playwright need."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from interop_support import sample_rows, write_capture

import wsreplay
from wsreplay.exceptions import ConfigurationError
from wsreplay.interop import frames_to_har


def _by_connection(frames: pd.DataFrame) -> pd.DataFrame:
    return frames.sort_values(["conn_id", "seq"]).reset_index(drop=True)


def _column(frames: pd.DataFrame, name: str) -> list:
    col = frames[name].astype(object)
    return col.where(frames[name].notna(), None).tolist()


def test_capture_to_har_to_capture_gives_the_same_frames(sample_capture: Path, tmp_path: Path):
    before = _by_connection(wsreplay.load(sample_capture))
    har = wsreplay.export_har(sample_capture, tmp_path / "out.har")
    imported = wsreplay.import_har(har, out=tmp_path / "again")
    after = _by_connection(wsreplay.load(tmp_path / "again"))

    assert len(after) == len(before) == len(imported) == len(sample_rows())
    for name in before.columns:
        if name == "ts":
            continue
        assert _column(after, name) == _column(before, name), name
    # timestamps: exact for open/close/error rows, to the microsecond for messages (HAR's float seconds)
    delta = (after["ts"] - before["ts"]).abs()
    assert delta.max() < pd.Timedelta(microseconds=1)
    assert (after["ts"].dt.floor("ms") == before["ts"].dt.floor("ms")).all()
    assert imported.attrs["import"]["connections"] == 4
    assert imported.attrs["import"]["messages"] == 13


def test_har_has_what_chrome_devtools_requires(sample_capture: Path, tmp_path: Path):
    path = wsreplay.export_har(sample_capture, tmp_path / "out.har", base_url="https://auth.example.com")
    har = json.loads(path.read_text(encoding="utf-8"))
    log = har["log"]
    # DevTools' HARFormat.ts refuses a log without creator/entries and entries without these fields
    assert log["version"] == "1.2" and log["creator"]["name"] == "wsreplay" and isinstance(log["pages"], list)
    for entry in log["entries"]:
        pd.Timestamp(entry["startedDateTime"])  # a date JavaScript parses (ISO 8601, milliseconds, Z)
        assert entry["startedDateTime"].endswith("Z") and len(entry["startedDateTime"]) == 24
        assert isinstance(entry["time"], float)
        for key in ("method", "url", "httpVersion", "headers", "queryString", "cookies", "headersSize", "bodySize"):
            assert key in entry["request"], key
        for key in ("status", "statusText", "httpVersion", "headers", "cookies", "redirectURL", "headersSize"):
            assert key in entry["response"], key
        assert isinstance(entry["response"]["content"]["size"], int)
        assert {"send", "wait", "receive"} <= set(entry["timings"])
        assert entry["_resourceType"] == "websocket"
        assert entry["request"]["url"].startswith("wss://auth.example.com/ws/")
        for message in entry["_webSocketMessages"]:
            assert message["type"] in ("send", "receive")
            assert message["opcode"] in (1, 2)
            assert isinstance(message["time"], float) and 1.7e9 < message["time"] < 2e9
            assert isinstance(message["data"], str)


def test_har_entries_carry_directions_opcodes_statuses_and_user_agent(sample_capture: Path):
    har = frames_to_har(wsreplay.load(sample_capture))
    entries = {e["_wsreplay"]["conn_id"]: e for e in har["log"]["entries"]}
    outpost = entries["c-outpost"]
    assert outpost["request"]["url"].endswith("/?instance_uuid=inst-1&attempt=0")
    assert {"name": "User-Agent", "value": "goauthentik.io/outpost/2023.10.0"} in outpost["request"]["headers"]
    kinds = [(m["type"], m["opcode"]) for m in outpost["_webSocketMessages"]]
    assert kinds[:2] == [("send", 1), ("receive", 1)]
    assert ("send", 2) in kinds
    binary = next(m for m in outpost["_webSocketMessages"] if m["opcode"] == 2)
    assert binary["data"] == "AQL/"  # base64 of 01 02 ff
    assert entries["c-refused"]["response"]["status"] == 403
    assert entries["c-refused"]["_webSocketMessages"] == []
    assert entries["c-client"]["response"]["status"] == 101
    assert [m["type"] for m in entries["c-client"]["_webSocketMessages"]] == ["receive"] * 3
    # entries come in time order, as DevTools lists them
    starts = [e["startedDateTime"] for e in har["log"]["entries"]]
    assert starts == sorted(starts)


def test_a_har_without_wsreplay_extensions_still_imports(sample_capture: Path, tmp_path: Path):
    har = frames_to_har(wsreplay.load(sample_capture))
    for entry in har["log"]["entries"]:
        del entry["_wsreplay"]
    del har["log"]["_wsreplay"]
    frames = wsreplay.import_har(json.dumps(har).encode())
    counts = frames.groupby("event", observed=True).size().to_dict()
    # without the extension: opens and refusals come back, closes and errors after open do not (HAR has no field)
    assert counts == {"open": 3, "message": 13, "error": 1}
    refused = frames[frames["event"] == "error"].iloc[0]
    assert refused["status"] == 403


def test_export_filters_and_bad_base_url(sample_capture: Path, tmp_path: Path):
    path = wsreplay.export_har(sample_capture, tmp_path / "client.har", endpoint="client")
    har = json.loads(path.read_text())
    assert {e["request"]["url"].split("/ws/")[1] for e in har["log"]["entries"]} == {"client/"}
    with pytest.raises(ConfigurationError, match="base_url"):
        wsreplay.export_har(sample_capture, tmp_path / "x.har", base_url="authentik")


def test_export_of_an_empty_capture_is_an_empty_har(tmp_path: Path):
    from wsreplay.schema import empty_frames

    har = frames_to_har(empty_frames())
    assert har["log"]["entries"] == []
    write_capture(tmp_path / "cap", sample_rows())
    assert wsreplay.export_har(wsreplay.load(tmp_path / "cap").iloc[0:0], tmp_path / "e.har").exists()


def test_dropped_rows_survive_capture_to_har_to_capture(tmp_path: Path):
    """A message a proxy dropped (event ``dropped``, from a mitmproxy import) is not shown as sent, and comes back."""
    from interop_support import PK, T0

    from wsreplay.events import ConnectionLog
    from wsreplay.protocol import encode_ack, encode_hello

    log = ConnectionLog("cap-1", f"/ws/outpost/{PK}/", "instance_uuid=i1", conn_id="c-dropped")
    rows = [log.open(T0, status=101, user_agent="goauthentik.io/outpost/2023.10.0", peer="127.0.0.1:1")]
    rows.append(log.message(T0 + 1_000_000, "to_server", encode_hello({"uuid": "i1", "version": "2023.10.0"})))
    rows[-1]["event"] = "dropped"
    rows.append(log.message(T0 + 2_000_000, "to_server", b"\x01\x02"))
    rows[-1]["event"] = "dropped"
    rows.append(log.message(T0 + 3_000_000, "to_peer", encode_ack()))
    rows.append(log.close(T0 + 4_000_000, "to_server", code=1000))
    capture = write_capture(tmp_path / "cap", rows)
    before = _by_connection(wsreplay.load(capture))
    har = json.loads(wsreplay.export_har(capture, tmp_path / "out.har").read_text())
    assert len(har["log"]["entries"][0]["_webSocketMessages"]) == 1  # DevTools shows only the delivered ACK
    after = _by_connection(wsreplay.import_har(tmp_path / "out.har", out=tmp_path / "again"))
    for name in before.columns:
        assert _column(after, name) == _column(before, name), name
