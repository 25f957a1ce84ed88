"""The report opens in headless Chromium: every image decodes, no console error, no network."""

from __future__ import annotations

import pytest
from report_support import render_in_chromium

import wsreplay


@pytest.mark.slow
def test_report_renders_in_chromium(capture, tmp_path):
    path, _ = capture
    page = wsreplay.write_report(path, tmp_path / "report.html")
    shown = render_in_chromium(page)
    assert len(shown.images) == 5
    for img in shown.images:
        assert img["complete"] and img["inline"], img
        assert img["width"] > 300 and img["height"] > 100, img
    assert shown.console_errors == []
    assert shown.facts["external"] == []
    assert [u for u in shown.requests if not u.startswith(("file:", "data:"))] == []
    assert shown.facts["sections"] == ["summary", "uptime", "outages", "fleet", "latency", "hello", "notices"]
    text = shown.facts["text"]
    assert "outpost outages" in text and "disconnect" in text and "upgrade" in text
    assert shown.screenshot.startswith(b"\x89PNG")
    (tmp_path / "report.png").write_bytes(shown.screenshot)
