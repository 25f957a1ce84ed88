"""``wsreplay report CAPTURE [-o FILE.html]``."""

from __future__ import annotations

from wsreplay.cli import main


def test_report_command_writes_the_page(capture, tmp_path, capsys):
    path, _ = capture
    out = tmp_path / "fleet-report.html"
    assert main(["report", str(path), "-o", str(out), "--title", "my fleet"]) == 0
    text = out.read_text()
    assert "<title>my fleet</title>" in text
    printed = capsys.readouterr().out
    assert str(out) in printed and "3 outposts, 3 outages" in printed


def test_report_command_default_output_and_errors(capture, tmp_path, capsys):
    path, _ = capture
    assert main(["report", str(path)]) == 0
    assert (path.parent / "fleet.html").exists()
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wsreplay report: error:") and err.count("\n") == 1
