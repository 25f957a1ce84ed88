"""Importing HAR files: DevTools-shaped entries, detection, credentials, and errors that name the entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from interop_support import FIXTURES, PK

import wsreplay
from wsreplay.exceptions import ImportFormatError
from wsreplay.protocol import encode_ack, encode_hello

T = 1795838763.116899  # epoch seconds


def chrome_entry(url: str, messages: list[dict[str, Any]], *, status: int = 101, **extra: Any) -> dict[str, Any]:
    """An entry shaped like Chrome DevTools' "Save all as HAR" output for a WebSocket."""
    return {
        "_initiator": {"type": "script"},
        "_priority": None,
        "_resourceType": "websocket",
        "cache": {},
        "connection": "1234",
        "request": {
            "method": "GET",
            "url": url,
            "httpVersion": "HTTP/1.1",
            "headers": [
                {"name": "Host", "value": "auth.example.com"},
                {"name": "Authorization", "value": "Bearer SECRET-TOKEN"},
                {"name": "Cookie", "value": "authentik_session=SECRET-COOKIE"},
                {"name": "User-Agent", "value": "goauthentik.io/outpost/2023.10.0"},
                {"name": "Upgrade", "value": "websocket"},
            ],
            "queryString": [],
            "cookies": [{"name": "authentik_session", "value": "SECRET-COOKIE"}],
            "headersSize": 412,
            "bodySize": 0,
        },
        "response": {
            "status": status,
            "statusText": "Switching Protocols" if status == 101 else "Forbidden",
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": "Set-Cookie", "value": "authentik_session=SECRET-SET; Path=/"}],
            "cookies": [],
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
            "_transferSize": 0,
            "_error": None,
        },
        "serverIPAddress": "10.0.0.5",
        "startedDateTime": "2026-11-28T04:06:03.116Z",
        "time": 25000.5,
        "timings": {"blocked": -1, "dns": -1, "ssl": -1, "connect": -1, "send": 0, "wait": 0, "receive": 0},
        "_webSocketMessages": messages,
        **extra,
    }


def har(*entries: dict[str, Any]) -> bytes:
    doc = {"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"}, "pages": []}}
    doc["log"]["entries"] = list(entries)
    return json.dumps(doc, indent=2).encode()


def outpost_messages(n: int) -> list[dict[str, Any]]:
    out = []
    for k in range(n):
        out.append({"type": "send", "time": T + 10 * k + 0.001, "opcode": 1, "data": encode_hello({"uuid": "i1"})})
        out.append({"type": "receive", "time": T + 10 * k + 0.004, "opcode": 1, "data": encode_ack()})
    return out


def test_a_devtools_har_maps_to_capture_rows():
    url = f"wss://auth.example.com/ws/outpost/{PK}/?instance_uuid=i1&attempt=0&token=SECRET-QUERY"
    frames = wsreplay.import_har(har(chrome_entry(url, outpost_messages(3))))
    assert list(frames["event"]) == ["open"] + ["message"] * 6
    assert set(frames["endpoint"]) == {"outpost"} and set(frames["outpost_uuid"]) == {PK}
    assert frames["instance_uuid"].eq("i1").all()
    assert frames.loc[0, "status"] == 101
    assert frames.loc[0, "user_agent"] == "goauthentik.io/outpost/2023.10.0"
    assert frames.loc[0, "query"] == "instance_uuid=i1&attempt=0"
    messages = frames[frames["event"] == "message"]
    assert list(messages["direction"]) == ["to_server", "to_peer"] * 3
    assert list(messages["instruction_name"]) == ["HELLO", "ACK"] * 3
    assert messages["ts"].iloc[0] == pd.Timestamp("2026-11-28T04:06:03.117899Z")
    assert frames["seq"].tolist() == list(range(7))


def test_credentials_never_reach_the_frames():
    url = f"ws://auth.example.com/ws/outpost/{PK}/?token=SECRET-QUERY&access_token=SECRET-QUERY2"
    frames = wsreplay.import_har(har(chrome_entry(url, outpost_messages(1))))
    text = frames.astype(str).to_csv()
    assert "SECRET" not in text
    assert frames.loc[0, "query"] == ""


def test_websocket_entries_are_found_without_resource_type_and_others_are_skipped():
    plain = chrome_entry("https://auth.example.com/api/v3/root/config/", [], status=200)
    del plain["_resourceType"], plain["_webSocketMessages"]
    plain["request"]["headers"] = [{"name": "Accept", "value": "application/json"}]
    by_status = chrome_entry(f"https://auth.example.com/ws/outpost/{PK}/", outpost_messages(1))
    del by_status["_resourceType"]  # Playwright-style: found by its 101 and its messages
    by_scheme = chrome_entry("ws://auth.example.com/ws/client/", [])
    del by_scheme["_resourceType"], by_scheme["_webSocketMessages"]
    frames = wsreplay.import_har(har(plain, by_status, by_scheme))
    info = frames.attrs["import"]
    assert (info["entries"], info["connections"], info["skipped_entries"], info["messages"]) == (3, 2, 1, 2)
    assert set(frames["endpoint"]) == {"outpost", "client"}


def test_binary_close_ping_and_chrome_error_frames():
    messages = [
        {"type": "receive", "time": T + 1, "opcode": 2, "data": "AAH/"},
        {"type": "send", "time": T + 2, "opcode": 9, "data": ""},
        {"type": "error", "time": T + 3, "opcode": -1, "data": "net::ERR_CONNECTION_RESET"},
        {"type": "receive", "time": T + 4, "opcode": 8, "data": "A/RieWU="},  # 1012 "bye"
    ]
    frames = wsreplay.import_har(har(chrome_entry("ws://h/ws/client/", messages)))
    assert list(frames["event"]) == ["open", "message", "error", "close"]
    assert frames.loc[1, "payload_bytes"] == b"\x00\x01\xff" and frames.loc[1, "opcode"] == "binary"
    assert frames.loc[2, "close_reason"] == "net::ERR_CONNECTION_RESET"
    assert (frames.loc[3, "close_code"], frames.loc[3, "close_reason"], frames.loc[3, "direction"]) == (
        1012,
        "bye",
        "to_peer",
    )


def test_a_refused_handshake_is_an_error_row():
    frames = wsreplay.import_har(har(chrome_entry(f"ws://h/ws/outpost/{PK}/", [], status=403)))
    assert list(frames["event"]) == ["error"]
    assert frames.loc[0, "status"] == 403
    assert frames.loc[0, "close_reason"] == "handshake refused: HTTP 403 Forbidden"


def test_import_writes_a_capture_that_load_reads(tmp_path: Path):
    source = tmp_path / "devtools.har"
    source.write_bytes(har(chrome_entry(f"ws://h/ws/outpost/{PK}/", outpost_messages(5))))
    returned = wsreplay.import_har(source, out=tmp_path / "capture", capture_id="incident-42")
    loaded = wsreplay.load(tmp_path / "capture")
    assert len(loaded) == len(returned) == 11
    assert set(loaded["capture_id"]) == {"incident-42"}
    assert [p.name for p in (tmp_path / "capture").iterdir()] == ["incident-42-00000.parquet"]


# ------------------------------------------------------------------ errors name the entry


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m[3].pop("time"), r"entry 1 \(/ws/outpost/[^)]+/\): message 3 has no 'time'"),
        (lambda m: m[2].update(time="yesterday"), r"entry 1 \(/ws/outpost/.+\): message 2: 'time' 'yesterday'"),
        (lambda m: m[0].pop("opcode"), r"entry 1 \(.+\): message 0 has no 'opcode'"),
        (lambda m: m[1].update(opcode=2, data="not base64!"), r"message 1: binary 'data' is not valid base64"),
        (lambda m: m[1].update(type="sent"), r"message 1 has type 'sent'; expected 'send' or 'receive'"),
        (lambda m: m[0].update(opcode=7), r"message 0 has opcode 7; expected 1 \(text\) or 2 \(binary\)"),
        (lambda m: m.append("hello"), r"message 4 is not an object"),
    ],
)
def test_a_bad_message_names_its_entry_and_index(change: Any, message: str):
    messages = outpost_messages(2)
    change(messages)
    data = har(
        chrome_entry("ws://h/ws/client/", []),
        chrome_entry(f"ws://h/ws/outpost/{PK}/?token=SECRET", messages),
    )
    with pytest.raises(ImportFormatError, match=message) as info:
        wsreplay.import_har(data)
    assert "SECRET" not in str(info.value)


def test_bad_entries_can_be_skipped_and_are_listed():
    bad = outpost_messages(1)
    del bad[0]["data"]
    data = har(chrome_entry(f"ws://h/ws/outpost/{PK}/", bad), chrome_entry("ws://h/ws/client/", []))
    frames = wsreplay.import_har(data, on_error="skip")
    assert frames.attrs["import"]["errors"] == [f"<bytes>: entry 0 (/ws/outpost/{PK}/): message 0 has no 'data'"]
    assert list(frames["endpoint"]) == ["client"]


def test_a_cut_off_har_names_the_entry_it_ends_in(tmp_path: Path):
    full = har(*(chrome_entry(f"ws://h/ws/outpost/{PK}/", outpost_messages(2)) for _ in range(3)))
    cut = tmp_path / "cut.har"
    cut.write_bytes(full[: int(len(full) * 0.8)])
    with pytest.raises(ImportFormatError, match=rf"cut.har: entry 2 \(/ws/outpost/{PK}/\): the file ends inside"):
        wsreplay.import_har(cut)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "ends early"),
        (b"<html>", "not valid HAR JSON"),
        (b'{"entries": []}', "no 'log' object"),
        (b'{"log": {"entries": {}}}', "'log.entries' is missing or not a list"),
        (b'{"log": {"entries": [1]}}', "entry 0: not an object"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"log": {"entries": [{"_resourceType": "websocket"}]}}', "entry 0: no 'request.url'"),
    ],
)
def test_files_that_are_not_har(data: bytes, message: str):
    with pytest.raises(ImportFormatError, match=message):
        wsreplay.import_har(data)


def test_a_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ImportFormatError, match="no such file"):
        wsreplay.import_har(tmp_path / "nope.har")


def test_mitmproxy_har_export_fixture():
    """A HAR written by mitmproxy's own exporter (mitmdump --set hardump=...) in front of the mock authentik."""
    frames = wsreplay.import_har(FIXTURES / "mitmproxy-hardump.har")
    info = frames.attrs["import"]
    assert (info["entries"], info["connections"], info["messages"]) == (5, 5, 16)
    # mitmproxy's HAR has no close information: opens, messages and the refused handshake
    assert frames.groupby("event", observed=True).size().to_dict() == {"open": 4, "message": 16, "error": 1}
    messages = frames[frames["event"] == "message"]
    assert messages.groupby("direction", observed=True).size().to_dict() == {"to_server": 7, "to_peer": 9}
    binary = messages[messages["opcode"] == "binary"]
    assert list(binary["payload_bytes"]) == [b"\x01\x02"]
    assert "SECRET" not in frames.astype(str).to_csv()
    # same frames as the flow file mitmdump wrote in the same run
    mitm = wsreplay.import_mitm(FIXTURES / "mitmdump-outposts.mitm")
    mitm_messages = mitm[mitm["event"] == "message"]
    assert list(messages["payload"].astype(str)) == list(mitm_messages["payload"].astype(str))
    assert list(messages["ts"]) == list(mitm_messages["ts"])


# ------------------------------------------------------------------ Playwright's HAR shapes


def _playwright_entry(url: str, messages: list[dict[str, Any]] | None, **content: Any) -> dict[str, Any]:
    """An entry as Playwright's harTracer writes it: times in epoch *milliseconds*."""
    entry = chrome_entry(url, messages or [])
    entry["startedDateTime"] = "2026-11-28T04:06:03.116Z"
    entry["response"]["content"] = {"size": -1, "mimeType": "x-unknown", **content}
    if messages is None:
        del entry["_webSocketMessages"]
    return entry


def _ms_messages(n: int) -> list[dict[str, Any]]:
    return [
        {"type": "send" if k % 2 == 0 else "receive", "time": 1795838763116.899 + 10 * k, "opcode": 1, "data": data}
        for k, data in enumerate([encode_hello({"uuid": "i1"}), encode_ack()] * n)
    ]


def test_playwright_embedded_messages_in_milliseconds():
    frames = wsreplay.import_har(har(_playwright_entry(f"ws://h/ws/outpost/{PK}/", _ms_messages(2))))
    messages = frames[frames["event"] == "message"]
    assert messages["ts"].iloc[0] == pd.Timestamp("2026-11-28T04:06:03.116899Z")
    assert messages["ts"].iloc[3] == pd.Timestamp("2026-11-28T04:06:03.146899Z")
    assert list(messages["instruction_name"]) == ["HELLO", "ACK"] * 2


def test_playwright_attached_messages_beside_the_har_and_in_a_zip(tmp_path: Path):
    import zipfile

    lines = "".join(json.dumps(m) + "\n" for m in _ms_messages(3)).encode()
    doc = har(_playwright_entry(f"ws://h/ws/outpost/{PK}/", None, _file="0b1c2d.jsonl"))
    (tmp_path / "pw.har").write_bytes(doc)
    with pytest.raises(ImportFormatError, match=r"attached file '0b1c2d.jsonl', which is not here"):
        wsreplay.import_har(tmp_path / "pw.har")
    (tmp_path / "0b1c2d.jsonl").write_bytes(lines)
    beside = wsreplay.import_har(tmp_path / "pw.har")
    assert beside.attrs["import"]["messages"] == 6

    with zipfile.ZipFile(tmp_path / "pw.zip", "w") as archive:
        archive.writestr("har.har", doc)
        archive.writestr("0b1c2d.jsonl", lines)
    zipped = wsreplay.import_file(tmp_path / "pw.zip")
    assert zipped.attrs["import"]["format"] == "har"
    assert list(zipped["payload"].astype(str)) == list(beside["payload"].astype(str))


def test_playwright_without_timing_and_a_socket_error():
    untimed = [{**m, "time": -1} for m in _ms_messages(1)]
    failed = _playwright_entry("ws://h/ws/client/", [])
    failed["response"].update(status=0, statusText="", _failureText="net::ERR_CONNECTION_REFUSED")
    frames = wsreplay.import_har(har(_playwright_entry(f"ws://h/ws/outpost/{PK}/", untimed), failed))
    opened = frames[frames["endpoint"] == "outpost"]
    assert list(opened["event"]) == ["open", "message", "message"]
    assert opened["ts"].nunique() == 1  # no times: every frame at the handshake
    refused = frames[frames["endpoint"] == "client"].iloc[0]
    assert (refused["event"], refused["close_reason"]) == ("error", "net::ERR_CONNECTION_REFUSED")


@pytest.mark.parametrize("name", ["playwright-client.har", "playwright-client.zip"])
def test_real_playwright_hars(name: str):
    """Written by Playwright 1.65 driving Chromium against the mock's /ws/client/ (fixtures/README.md)."""
    frames = wsreplay.import_file(FIXTURES / name)
    info = frames.attrs["import"]
    assert (info["format"], info["entries"], info["connections"], info["messages"]) == ("har", 2, 1, 3)
    assert list(frames["event"]) == ["open", "message", "message", "message"]
    assert list(frames["message"].iloc[1:]) == ["notice 0", "notice 1", "notice 2"]
    assert set(frames["direction"].dropna()) == {"to_peer"}
    assert "HeadlessChrome" in frames.iloc[0]["user_agent"]
    # epoch milliseconds read as such: the frames follow the handshake within a second
    gap = frames["ts"].iloc[1] - frames["ts"].iloc[0]
    assert pd.Timedelta(0) < gap < pd.Timedelta(seconds=1)


def test_real_playwright_har_of_a_blocked_socket():
    frames = wsreplay.import_har(FIXTURES / "playwright-blocked.har")
    row = frames.iloc[0]
    assert (len(frames), row["event"], row["endpoint"]) == (1, "error", "client")
    assert pd.isna(row["status"])
    assert row["close_reason"].endswith("net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS")


def test_json_nested_deep_enough_to_exhaust_recursion_is_one_clear_error(tmp_path):
    from wsreplay.cli import main

    deep = tmp_path / "deep.har"
    deep.write_text('{"log": {"entries": ' + "[" * 100_000 + "]" * 100_000 + "}}")
    with pytest.raises(ImportFormatError, match=r"deep\.har: nested too deeply"):
        wsreplay.import_har(deep)
    assert main(["import", str(deep), "--out", str(tmp_path / "cap")]) != 0
