"""Importing mitmproxy flow files: both flow-state shapes, refused handshakes, and errors naming the flow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from interop_support import FIXTURES, PK
from interop_support import tnet_dumps as dumps

import wsreplay
from wsreplay.exceptions import ImportFormatError
from wsreplay.protocol import encode_ack, encode_hello

T = 1795838763.116899
HELLO = encode_hello({"uuid": "i1", "version": "2023.10.0"}).encode()
ACK = encode_ack().encode()


def _headers(*pairs: tuple[str, str]) -> list[list[bytes]]:
    return [[k.encode(), v.encode()] for k, v in pairs]


def http_flow(path: str, *, status: int | None = 101, websocket: Any = None, version: int = 21) -> dict[str, Any]:
    """A flow state as mitmproxy 7+ writes it (format 21 is mitmproxy 11's)."""
    flow: dict[str, Any] = {
        "version": version,
        "type": "http",
        "id": f"flow-{path}-{status}",
        "error": None,
        "client_conn": {"peername": ["127.0.0.1", 50000], "sockname": ["127.0.0.1", 8080]},
        "server_conn": {"peername": ["127.0.0.1", 9000]},
        "intercepted": False,
        "is_replay": None,
        "marked": "",
        "metadata": {},
        "comment": "",
        "timestamp_created": T,
        "request": {
            "host": "127.0.0.1",
            "port": 9000,
            "method": b"GET",
            "scheme": b"http",
            "authority": b"",
            "path": path.encode(),
            "http_version": b"HTTP/1.1",
            "headers": _headers(
                ("Host", "127.0.0.1:9000"),
                ("Authorization", "Bearer SECRET-TOKEN"),
                ("Cookie", "authentik_session=SECRET"),
                ("User-Agent", "goauthentik.io/outpost/2023.10.0"),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
            ),
            "content": b"",
            "trailers": None,
            "timestamp_start": T,
            "timestamp_end": T + 0.001,
        },
        "response": None
        if status is None
        else {
            "http_version": b"HTTP/1.1",
            "status_code": status,
            "reason": b"Switching Protocols" if status == 101 else b"Forbidden",
            "headers": _headers(("Upgrade", "websocket")) if status == 101 else [],
            "content": b"",
            "trailers": None,
            "timestamp_start": T + 0.002,
            "timestamp_end": T + 0.002,
        },
        "websocket": websocket,
        "backup": None,
    }
    return flow


def messages(n: int, *, injected: bool = True) -> list[list[Any]]:
    out = []
    for k in range(n):
        extra = [False, False] if injected else [False]
        out.append([1, True, HELLO, T + 10 * k + 0.01, *extra])
        out.append([1, False, ACK, T + 10 * k + 0.013, *extra])
    return out


def test_a_flow_file_of_mitmproxy_7_and_later():
    ws = {
        "messages": messages(3),
        "closed_by_client": True,
        "close_code": 1000,
        "close_reason": "",
        "timestamp_end": 45.0 + T,
    }
    plain = http_flow("/api/v3/root/config/", status=200)
    plain["request"]["headers"] = _headers(("Accept", "application/json"))
    data = dumps(plain) + dumps(http_flow(f"/ws/outpost/{PK}/?instance_uuid=i1&attempt=0&token=SECRET-Q", websocket=ws))
    frames = wsreplay.import_mitm(data)
    assert list(frames["event"]) == ["open"] + ["message"] * 6 + ["close"]
    assert list(frames["direction"].iloc[1:7]) == ["to_server", "to_peer"] * 3
    assert list(frames["instruction_name"].iloc[1:7]) == ["HELLO", "ACK"] * 3
    opened = frames.iloc[0]
    assert (opened["status"], opened["peer"], opened["query"]) == (101, "127.0.0.1:50000", "instance_uuid=i1&attempt=0")
    assert opened["user_agent"] == "goauthentik.io/outpost/2023.10.0"
    closed = frames.iloc[-1]
    assert (closed["close_code"], closed["direction"]) == (1000, "to_server")
    assert frames.attrs["import"]["skipped_flows"] == 1
    assert "SECRET" not in frames.astype(str).to_csv()


def test_a_flow_file_of_mitmproxy_6_and_older():
    handshake = http_flow(f"/ws/outpost/{PK}/", version=11)
    handshake["metadata"] = {"websocket": True}
    handshake["id"] = "hs-1"
    ws_flow = {
        "version": 11,
        "type": "websocket",
        "id": "ws-1",
        "metadata": {"websocket_handshake": "hs-1"},
        "client_conn": {"address": ["10.1.2.3", 4444]},
        "messages": messages(2, injected=False),
        "close_sender": "server",
        "close_code": 1012,
        "close_reason": "restart",
    }
    frames = wsreplay.import_mitm(dumps(handshake) + dumps(ws_flow))
    assert list(frames["event"]) == ["open"] + ["message"] * 4 + ["close"]
    assert (frames.iloc[-1]["close_code"], frames.iloc[-1]["direction"]) == (1012, "to_peer")
    assert frames.iloc[0]["outpost_uuid"] == PK
    assert frames.attrs["import"]["connections"] == 1


def test_a_refused_handshake_and_one_without_answer_are_error_rows():
    refused = http_flow(f"/ws/outpost/{PK}/", status=403)
    unanswered = http_flow("/ws/client/", status=None)
    unanswered["error"] = {"msg": "Connection refused", "timestamp": T + 1}
    frames = wsreplay.import_mitm(dumps(refused) + dumps(unanswered))
    assert list(frames["event"]) == ["error", "error"]
    assert frames.iloc[0]["status"] == 403
    assert frames.iloc[0]["close_reason"] == "handshake refused: HTTP 403 Forbidden"
    assert frames.iloc[1]["close_reason"] == "Connection refused"


def test_binary_frames_and_a_connection_that_broke():
    ws = {
        "messages": [[2, True, b"\x01\x02", T + 1, False, False], [1, True, b"\xff bad", T + 2, False, False]],
        "closed_by_client": None,
        "close_code": None,
        "close_reason": None,
        "timestamp_end": None,
    }
    flow = http_flow("/ws/client/", websocket=ws)
    flow["error"] = {"msg": "peer closed connection", "timestamp": T + 3}
    frames = wsreplay.import_mitm(dumps(flow))
    assert list(frames["event"]) == ["open", "message", "message", "error"]
    assert frames.iloc[1]["payload_bytes"] == b"\x01\x02" and frames.iloc[1]["opcode"] == "binary"
    assert frames.iloc[2]["payload_bytes"] == b"\xff bad" and frames.iloc[2]["parse_error"].startswith("invalid UTF-8")
    assert frames.iloc[3]["close_reason"] == "peer closed connection"


def test_a_cut_off_flow_file_names_the_flow(tmp_path: Path):
    ws = {
        "messages": messages(2),
        "closed_by_client": True,
        "close_code": 1000,
        "close_reason": "",
        "timestamp_end": None,
    }
    first = dumps(http_flow("/ws/client/", websocket=ws))
    second = dumps(http_flow(f"/ws/outpost/{PK}/", websocket=ws))
    path = tmp_path / "cut.mitm"
    path.write_bytes(first + second[:-40])
    with pytest.raises(ImportFormatError, match=rf"cut.mitm: flow 1 \(starting at byte {len(first)}\): the file ends"):
        wsreplay.import_mitm(path)


def test_a_bad_message_names_flow_and_message():
    ws = {"messages": [*messages(1), [1, True, b"x"]], "closed_by_client": None, "close_code": None}
    with pytest.raises(ImportFormatError, match=rf"flow 0 \(/ws/outpost/{PK}/\): message 2 is not \[opcode"):
        wsreplay.import_mitm(dumps(http_flow(f"/ws/outpost/{PK}/?token=x", websocket=ws)))
    ws = {"messages": [[1, "yes", b"x", T]], "closed_by_client": None, "close_code": None}
    with pytest.raises(ImportFormatError, match="message 0: from_client is 'yes'"):
        wsreplay.import_mitm(dumps(http_flow("/ws/client/", websocket=ws)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b'{"log": {}}', "not a mitmproxy flow file"),
        (b"5:hello,", "flow 0 .* is a bytes, not a flow"),
        (b"3:abc?", "flow 0 \\(starting at byte 0\\): unknown type tag"),
    ],
)
def test_files_that_are_not_flow_files(data: bytes, message: str):
    with pytest.raises(ImportFormatError, match=message):
        wsreplay.import_mitm(data)


def test_real_mitmdump_fixture():
    """A flow file written by mitmdump -w (mitmproxy 11, reverse proxy in front of the mock authentik)."""
    frames = wsreplay.import_mitm(FIXTURES / "mitmdump-outposts.mitm")
    info = frames.attrs["import"]
    assert (info["flows"], info["connections"], info["messages"]) == (5, 5, 16)
    assert frames.groupby("event", observed=True).size().to_dict() == {"open": 4, "message": 16, "close": 4, "error": 1}
    messages = frames[frames["event"] == "message"]
    assert messages.groupby("direction", observed=True).size().to_dict() == {"to_server": 7, "to_peer": 9}
    assert messages["instruction_name"].value_counts()["TRIGGER_UPDATE"] == 1
    opens = frames[frames["event"] == "open"]
    assert opens["peer"].str.match(r"127\.0\.0\.1:\d+$").all()
    assert set(opens["instance_uuid"].dropna()) == {"inst-a", "inst-b", "inst-c"}
    dropped = frames[frames["instance_uuid"] == "inst-c"].iloc[-1]
    assert (dropped["event"], dropped["close_code"], dropped["direction"]) == ("close", 1006, "to_peer")
    assert frames[frames["event"] == "error"].iloc[0]["status"] == 403
    assert "SECRET" not in frames.astype(str).to_csv()


def test_the_mitmdump_fixture_is_sniffed_as_mitm(tmp_path):
    frames = wsreplay.import_file(FIXTURES / "mitmdump-outposts.mitm", out=tmp_path / "cap")
    assert frames.attrs["import"]["format"] == "mitm"
    assert len(wsreplay.load(tmp_path / "cap")) == len(frames) == 25


@pytest.mark.parametrize("shape", ["mitmproxy 7+ (dropped)", "mitmproxy 6 and older (killed)"])
def test_messages_mitmproxy_dropped_are_imported_as_dropped_not_delivered(shape: str, tmp_path: Path):
    """An addon's ``message.drop()`` (``kill()`` before mitmproxy 7): the other side never got it."""
    hellos = messages(3, injected=shape.startswith("mitmproxy 7"))
    hellos[2][4] = True  # the second HELLO, never forwarded to authentik
    hellos[3][4] = True  # ... nor, then, its ACK (an addon dropping both ways)
    if shape.startswith("mitmproxy 7"):
        ws = {
            "messages": hellos,
            "closed_by_client": True,
            "close_code": 1000,
            "close_reason": "",
            "timestamp_end": None,
        }
        data = dumps(http_flow(f"/ws/outpost/{PK}/?instance_uuid=i1", websocket=ws))
    else:
        handshake = http_flow(f"/ws/outpost/{PK}/?instance_uuid=i1", version=11)
        handshake["metadata"], handshake["id"] = {"websocket": True}, "hs-1"
        ws_flow = {
            "version": 11,
            "type": "websocket",
            "id": "ws-1",
            "metadata": {"websocket_handshake": "hs-1"},
            "messages": hellos,
            "close_sender": "client",
            "close_code": 1000,
            "close_reason": "",
        }
        data = dumps(handshake) + dumps(ws_flow)
    frames = wsreplay.import_mitm(data, out=tmp_path / "cap")
    assert list(frames["event"]) == ["open", "message", "message", "dropped", "dropped", "message", "message", "close"]
    dropped = frames[frames["event"] == "dropped"]
    # kept as received, decoded as a message would be, in the direction it was going
    assert list(dropped["instruction_name"]) == ["HELLO", "ACK"] and list(dropped["direction"]) == [
        "to_server",
        "to_peer",
    ]
    assert dropped["payload"].iloc[0] == HELLO.decode() and dropped["parse_error"].isna().all()
    info = frames.attrs["import"]
    assert (info["messages"], info["dropped"]) == (4, 2)
    # the analyses see what authentik saw: two HELLOs, not three
    assert len(wsreplay.hello_intervals(frames)) == 2
    assert list(wsreplay.load(tmp_path / "cap")["event"]) == list(frames["event"])


def test_the_cli_says_how_many_messages_were_dropped(tmp_path: Path, capsys):
    from wsreplay.cli import main

    hellos = messages(2)
    hellos[0][4] = True
    ws = {"messages": hellos, "closed_by_client": True, "close_code": 1000, "close_reason": "", "timestamp_end": None}
    flows = tmp_path / "dropped.mitm"
    flows.write_bytes(dumps(http_flow(f"/ws/outpost/{PK}/", websocket=ws)))
    assert main(["import", str(flows), "--out", str(tmp_path / "cap")]) == 0
    out = capsys.readouterr().out
    assert "imported 1 connection(s), 3 message(s) (mitm)" in out
    assert "1 message(s) were dropped by the proxy (never delivered)" in out
