"""``wsreplay import`` and ``wsreplay export``: round trip through the command line, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from interop_support import tnet_dumps

import wsreplay
from wsreplay.cli import main
from wsreplay.interop import sniff_format


def test_export_then_import_on_the_command_line(sample_capture: Path, tmp_path: Path, capsys):
    har = tmp_path / "out.har"
    assert main(["export", str(sample_capture), "--har", str(har), "--base-url", "https://auth.example.com"]) == 0
    assert f"wrote {har}" in capsys.readouterr().out
    assert json.loads(har.read_text())["log"]["entries"][0]["request"]["url"].startswith("wss://auth.example.com/")

    assert main(["import", str(har), "--out", str(tmp_path / "again")]) == 0
    out = capsys.readouterr().out
    assert "imported 4 connection(s), 13 message(s) (har)" in out
    assert len(wsreplay.load(tmp_path / "again")) == len(wsreplay.load(sample_capture))


def test_export_filters(sample_capture: Path, tmp_path: Path):
    har = tmp_path / "outpost.har"
    assert main(["export", str(sample_capture), "--har", str(har), "--endpoint", "outpost"]) == 0
    entries = json.loads(har.read_text())["log"]["entries"]
    assert len(entries) == 2 and all("/ws/outpost/" in e["request"]["url"] for e in entries)


def test_import_errors_are_one_line(tmp_path: Path, capsys):
    bad = tmp_path / "bad.har"
    bad.write_text(
        '{"log": {"entries": [{"_resourceType": "websocket", "request": {"url": "ws://h/ws/client/"}, '
        '"startedDateTime": "2026-11-28T04:06:03Z", "_webSocketMessages": [{"type": "send"}]}]}}'
    )
    assert main(["import", str(bad), "--out", str(tmp_path / "cap")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"wsreplay import: error: {bad}: entry 0 (/ws/client/): message 0 has no 'time'"
    assert "\n" not in err and not (tmp_path / "cap").exists()

    assert main(["import", str(tmp_path / "missing.har"), "--out", str(tmp_path / "cap")]) == 2
    assert "no such file" in capsys.readouterr().err

    odd = tmp_path / "notes.txt"
    odd.write_text("hello")
    assert main(["import", str(odd), "--out", str(tmp_path / "cap")]) == 2
    assert "cannot tell its format" in capsys.readouterr().err


def test_skip_bad_imports_the_rest_and_lists_what_it_skipped(tmp_path: Path, capsys):
    har = tmp_path / "mixed.har"
    entry = {"_resourceType": "websocket", "startedDateTime": "2026-11-28T04:06:03Z", "response": {"status": 101}}
    har.write_text(
        json.dumps(
            {
                "log": {
                    "entries": [
                        {**entry, "request": {"url": "ws://h/ws/client/"}, "_webSocketMessages": [{"type": "x"}]},
                        {**entry, "request": {"url": "ws://h/ws/client/"}, "_webSocketMessages": []},
                    ]
                }
            }
        )
    )
    assert main(["import", str(har), "--out", str(tmp_path / "cap"), "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "imported 1 connection(s)" in out and "skipped:" in out and "entry 0" in out


def test_format_is_told_from_content():
    assert sniff_format(b'{"log": {"version": "1.2"}}') == "har"
    assert sniff_format(b'\xef\xbb\xbf{\n  "log": {}}') == "har"
    assert sniff_format(b'[\n  {\n    "_index": "packets-2026-11-28",') == "tshark"
    assert sniff_format(b'{"index":{"_index":"packets-2026-11-28","_type":"doc"}}\n') == "tshark"
    assert sniff_format(tnet_dumps({"version": 21, "type": "http"})) == "mitm"
    with pytest.raises(wsreplay.ImportFormatError, match="cannot tell its format"):
        sniff_format(b"GET / HTTP/1.1")


def test_import_file_dispatches(sample_capture: Path, tmp_path: Path):
    har = wsreplay.export_har(sample_capture, tmp_path / "x.har")
    frames = wsreplay.import_file(har)
    assert frames.attrs["import"]["format"] == "har"
    assert wsreplay.import_file(har.read_bytes(), format="har").attrs["import"]["connections"] == 4
    with pytest.raises(wsreplay.ImportFormatError, match="unknown import format"):
        wsreplay.import_file(har, format="pcap")  # type: ignore[arg-type]


def test_a_file_without_websockets_writes_nothing_and_says_so(tmp_path: Path, capsys):
    har = tmp_path / "plain.har"
    har.write_text(json.dumps({"log": {"entries": []}}))
    assert main(["import", str(har), "--out", str(tmp_path / "cap")]) == 1
    assert "holds no WebSocket connection (har); nothing written" in capsys.readouterr().err
    assert not (tmp_path / "cap").exists() or not any((tmp_path / "cap").iterdir())


def test_tshark_options_on_a_har_are_refused(sample_capture: Path, tmp_path: Path, capsys):
    har = wsreplay.export_har(sample_capture, tmp_path / "x.har")
    assert main(["import", str(har), "--out", str(tmp_path / "cap"), "--server-port", "9000"]) == 2
    assert "server_port only apply to tshark imports" in capsys.readouterr().err
