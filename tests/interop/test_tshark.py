"""Importing tshark -T json / -T ek exports of real loopback captures, and errors naming the packet."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from interop_support import FIXTURES

import wsreplay
from wsreplay.exceptions import ImportFormatError
from wsreplay.interop.tshark_streams import UNKNOWN_OUTPOST, UNKNOWN_PATH

PK1 = "1ee03a64-69e4-4f1e-9f06-35cc8e6de56a"
PK2 = "58a22b01-803b-4702-bab1-3cf49fd20321"
SERVER_PORT = 42039  # the mock's port in the capture (see fixtures/README.md)
JSON = FIXTURES / "tshark-outposts.json"
EK = FIXTURES / "tshark-outposts.ndjson"
NO_HANDSHAKE = FIXTURES / "tshark-no-handshake.ndjson"


def _comparable(frames: pd.DataFrame) -> pd.DataFrame:
    return frames.drop(columns=["conn_id", "capture_id"]).astype(str).reset_index(drop=True)


@pytest.mark.parametrize("path", [JSON, EK], ids=["json", "ek"])
def test_a_real_capture_imports_with_the_right_counts(path: Path):
    frames = wsreplay.import_tshark(path)
    info = frames.attrs["import"]
    assert (info["connections"], info["messages"], info["streams_without_handshake"]) == (5, 16, 0)
    assert frames.groupby("event", observed=True).size().to_dict() == {"open": 4, "message": 16, "close": 4, "error": 1}
    messages = frames[frames["event"] == "message"]
    assert messages.groupby("direction", observed=True).size().to_dict() == {"to_server": 7, "to_peer": 9}
    names = messages["instruction_name"].value_counts().to_dict()
    assert (names["HELLO"], names["ACK"], names["TRIGGER_UPDATE"]) == (6, 6, 1)
    assert list(messages[messages["endpoint"] == "client"]["message"]) == ["Successfully logged in!", "Outpost updated"]

    opens = frames[frames["event"] == "open"]
    assert set(opens["status"]) == {101}
    assert set(opens["instance_uuid"].dropna()) == {"inst-a", "inst-b", "inst-c"}
    assert set(opens["path"]) == {f"/ws/outpost/{PK1}/", "/ws/client/", f"/ws/outpost/{PK2}/"}
    assert opens["peer"].str.match(r"127\.0\.0\.1:\d+$").all()
    assert "goauthentik.io/outpost/2023.10.0" in set(opens["user_agent"])

    refused = frames[frames["event"] == "error"].iloc[0]
    assert (refused["status"], refused["close_reason"]) == (403, "handshake refused: HTTP 403 Forbidden")

    # the binary frame authentik does not accept, then the connection dropped without a close frame
    inst_c = frames[frames["instance_uuid"] == "inst-c"]
    assert list(inst_c["event"]) == ["open", "message", "message", "message", "close"]
    assert inst_c.iloc[3]["opcode"] == "binary" and inst_c.iloc[3]["payload_bytes"] == b"\x01\x02"
    assert (inst_c.iloc[4]["close_code"], inst_c.iloc[4]["direction"]) == (1006, "to_peer")
    closes = frames[(frames["event"] == "close") & (frames["close_code"] == 1000)]
    assert set(closes["direction"]) == {"to_server"}

    assert frames["ts"].dt.year.eq(2026).all() and frames["ts"].is_monotonic_increasing
    assert (frames["ts"].astype("int64") % 1000 != 0).any()  # tshark's nanoseconds are kept
    assert "SECRET" not in frames.astype(str).to_csv()


def test_json_and_ek_exports_of_one_capture_give_the_same_rows():
    assert _comparable(wsreplay.import_tshark(JSON)).equals(_comparable(wsreplay.import_tshark(EK)))


def test_the_same_session_through_mitmproxy_and_tshark_has_the_same_frames():
    """mitmdump and tshark saw the same scripted session: same connections, frames and directions."""
    tshark = wsreplay.import_tshark(JSON)
    mitm = wsreplay.import_mitm(FIXTURES / "mitmdump-outposts.mitm")
    cols = ["event", "path", "query", "direction", "opcode", "payload", "payload_bytes", "status", "user_agent"]
    msgs = [
        f[f["event"].isin(["open", "message", "error"])][cols].astype(str).reset_index(drop=True)
        for f in (tshark, mitm)
    ]
    assert msgs[0].equals(msgs[1])


def test_frames_without_their_handshake_use_masking_or_the_server_port():
    frames = wsreplay.import_tshark(NO_HANDSHAKE)
    info = frames.attrs["import"]
    assert (info["connections"], info["messages"], info["streams_without_handshake"]) == (4, 16, 4)
    messages = frames[frames["event"] == "message"]
    assert messages.groupby("direction", observed=True).size().to_dict() == {"to_server": 7, "to_peer": 9}
    assert set(frames[frames["event"] == "open"]["status"].dropna()) == set()

    named = wsreplay.import_tshark(NO_HANDSHAKE, server_port=SERVER_PORT, path=f"/ws/outpost/{PK2}/")
    assert set(named["endpoint"]) == {"outpost"} and set(named["outpost_uuid"]) == {PK2}
    assert list(named["direction"]) == list(frames["direction"])


def test_without_the_handshake_the_frames_tell_outposts_from_browsers():
    """``-Y websocket`` leaves the HTTP upgrade out: outpost instructions and browser notices tell the endpoint."""
    frames = wsreplay.import_tshark(NO_HANDSHAKE)
    opens = frames[frames["event"] == "open"]
    assert opens["endpoint"].value_counts().to_dict() == {"outpost": 3, "client": 1}
    assert set(frames[frames["endpoint"] == "outpost"]["outpost_uuid"]) == {UNKNOWN_OUTPOST}
    assert set(frames[frames["endpoint"] == "client"]["path"]) == {"/ws/client/"}
    assert frames.attrs["import"]["streams_from_frames"] == {"outpost": 3, "client": 1}
    assert frames.attrs["import"]["streams_unnamed"] == 0
    # so the analyses find what they need without --path
    hellos = wsreplay.hello_intervals(frames)
    assert len(hellos) == 6 and set(hellos["instance_uuid"]) == {"inst-a", "inst-b", "inst-c"}
    assert set(wsreplay.fleet(frames)["instance_uuid"]) == {"inst-a", "inst-b", "inst-c"}
    assert wsreplay.notice_frequency(frames, freq="1h").to_numpy().sum() == 2
    # --path still names them all, as before
    named = wsreplay.import_tshark(NO_HANDSHAKE, path=f"/ws/outpost/{PK2}/")
    assert set(named["endpoint"]) == {"outpost"} and set(named["outpost_uuid"]) == {PK2}


def _unreadable_client_stream(tmp_path: Path) -> Path:
    """The no-handshake export with the browser's notices replaced by text that is no protocol's."""
    lines = []
    for line in NO_HANDSHAKE.read_text().splitlines():
        doc = json.loads(line)
        ws = doc.get("layers", {}).get("websocket")
        if isinstance(ws, dict) and "message_type" in str(ws.get("websocket_websocket_payload_text")):
            ws["websocket_websocket_payload_text"] = "hello there"
        lines.append(json.dumps(doc))
    out = tmp_path / "odd.ndjson"
    out.write_text("\n".join(lines) + "\n")
    return out


def test_a_stream_whose_frames_tell_nothing_stays_other(tmp_path: Path):
    frames = wsreplay.import_tshark(_unreadable_client_stream(tmp_path))
    opens = frames[frames["event"] == "open"]
    assert opens["endpoint"].value_counts().to_dict() == {"outpost": 3, "other": 1}
    assert set(frames[frames["endpoint"] == "other"]["path"]) == {UNKNOWN_PATH}
    assert frames.attrs["import"]["streams_unnamed"] == 1


def test_cli_note_about_streams_without_handshake_only_when_it_helps(tmp_path: Path, capsys):
    from wsreplay.cli import main

    assert main(["import", str(NO_HANDSHAKE), "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "imported 4 connection(s), 16 message(s) (tshark)" in out
    assert "told from their frames: 3 outpost, 1 client" in out and "pass --path" not in out

    odd = _unreadable_client_stream(tmp_path)
    assert main(["import", str(odd), "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "1 stream(s) had no captured handshake and frames that tell no endpoint" in out
    assert "pass --path /ws/outpost/<pk>/" in out

    assert main(["import", str(odd), "--out", str(tmp_path / "c"), "--path", f"/ws/outpost/{PK2}/"]) == 0
    out = capsys.readouterr().out
    assert "imported 4 connection(s)" in out and "note:" not in out


def test_a_cut_off_json_export_names_the_packet(tmp_path: Path):
    text = JSON.read_text()
    cut = tmp_path / "cut.json"
    cut.write_text(text[: len(text) // 2])
    with pytest.raises(ImportFormatError, match=r"cut.json: packet \d+ \(line \d+\): the file ends inside this packet"):
        wsreplay.import_tshark(cut)


def test_a_bad_packet_names_packet_and_frame(tmp_path: Path):
    packets = json.loads(JSON.read_text())
    victim = next(i for i, p in enumerate(packets) if "websocket" in p["_source"]["layers"])
    packets[victim]["_source"]["layers"]["websocket"]["websocket.opcode"] = "x"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(packets))
    number = packets[victim]["_source"]["layers"]["frame"]["frame.number"]
    with pytest.raises(ImportFormatError, match=rf"packet {victim} \(frame {number}\): websocket.opcode is 'x'"):
        wsreplay.import_tshark(bad)
    skipped = wsreplay.import_tshark(bad, on_error="skip")
    assert len(skipped.attrs["import"]["errors"]) == 1
    assert skipped.attrs["import"]["messages"] == 15


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"packets", "not tshark output"),
        (b'[{"_source": {}}]', "packet 0: no '_source.layers'"),
        (b'{"timestamp": "1", "nolayers": 1}\n', "line 1: no 'layers'"),
        (b'[{"_source": {"layers": {"frame": {"frame.time_epoch": "soon"}}}}]', "is not a time"),
    ],
)
def test_files_that_are_not_tshark_output(data: bytes, message: str):
    with pytest.raises(ImportFormatError, match=message):
        wsreplay.import_tshark(data)


def test_import_file_sniffs_both_tshark_formats():
    assert wsreplay.import_file(JSON).attrs["import"]["format"] == "tshark"
    assert wsreplay.import_file(EK).attrs["import"]["format"] == "tshark"


def test_two_websocket_frames_in_one_tcp_segment_json():
    """tshark -T json repeats the "websocket" (and "data") layer keys when one segment carries two frames."""
    packets = json.loads(JSON.read_text())
    ack = next(p for p in packets if '"instruction": 0' in str(p["_source"]["layers"].get("websocket", {})))
    layers = ack["_source"]["layers"]
    ws_text = json.dumps(layers["websocket"])
    binary = {"websocket.fin": "1", "websocket.opcode": "2", "websocket.mask": "0", "websocket.payload": ""}
    head = json.dumps({k: v for k, v in layers.items() if k not in ("websocket", "data-text-lines")})[:-1]
    doubled = head + f', "websocket": {ws_text}, "websocket": {json.dumps(binary)}, "data": {{"data.data": "0a:0b"}}}}'
    text = JSON.read_text()
    original = json.dumps(ack)
    index = next(i for i, p in enumerate(packets) if p is ack)
    rebuilt = (
        "["
        + ",".join(
            json.dumps(p) if i != index else original.replace(json.dumps(layers), doubled)
            for i, p in enumerate(packets)
        )
        + "]"
    )
    assert rebuilt.count('"websocket": {') == text.count('"websocket": {') + 1
    before = wsreplay.import_tshark(JSON)
    after = wsreplay.import_tshark(rebuilt.encode())
    assert len(after) == len(before) + 1
    extra = after[(after["opcode"] == "binary") & (after["payload_bytes"] == b"\n\x0b")]
    assert len(extra) == 1 and extra.iloc[0]["direction"] == "to_peer"


def test_two_websocket_frames_in_one_tcp_segment_ek():
    """tshark -T ek turns repeated fields into lists."""
    lines = EK.read_text().splitlines()
    k = next(i for i, line in enumerate(lines) if '"websocket_websocket_payload_text":"{\\"instruction\\": 0' in line)
    doc = json.loads(lines[k])
    ws = doc["layers"]["websocket"]
    for key in ("websocket_websocket_fin", "websocket_websocket_mask"):
        ws[key] = [ws[key], ws[key]]
    ws["websocket_websocket_opcode"] = [ws["websocket_websocket_opcode"], "2"]
    doc["layers"]["data"] = {"data_data_data": "0a:0b", "data_data_len": "2"}
    lines[k] = json.dumps(doc)
    frames = wsreplay.import_tshark("\n".join(lines).encode())
    assert len(frames) == len(wsreplay.import_tshark(EK)) + 1
    assert (frames["payload_bytes"] == b"\n\x0b").sum() == 1


def test_absolute_form_request_uris_as_sent_to_a_forward_proxy():
    text = JSON.read_text().replace(
        '"http.request.uri": "/ws/', '"http.request.uri": "http://auth.example.com:9000/ws/'
    )
    frames = wsreplay.import_tshark(text.encode())
    assert set(frames["path"]) == {f"/ws/outpost/{PK1}/", "/ws/client/", f"/ws/outpost/{PK2}/"}
    assert "instance_uuid=inst-a&attempt=0" in set(frames["query"])


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"layers": ' + "[" * 100_000 + "]" * 100_000 + "}"])
def test_json_nested_deep_enough_to_exhaust_recursion_is_one_clear_error(tmp_path: Path, text: str):
    deep = tmp_path / "deep.json"
    deep.write_text(text)
    with pytest.raises(ImportFormatError, match=r"deep\.json: nested too deeply"):
        wsreplay.import_tshark(deep)
    # less deep than json's own limit, deep enough for the recursive walk of tshark's layers
    http = '{"n": ' * 990 + '{"x": null}' + "}" * 990
    deep.write_text(
        '[{"_source": {"layers": {"frame": {"frame.time_epoch": "1.0"}, "tcp": {"tcp.stream": "0"}, "http": '
        + http
        + "}}}]"
    )
    with pytest.raises(ImportFormatError, match="nested too deeply"):
        wsreplay.import_tshark(deep)
