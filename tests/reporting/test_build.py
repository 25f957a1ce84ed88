"""The HTML report: self-contained, every section, the outages where the analysis (and truth) put them."""

from __future__ import annotations

import base64
import re

import pandas as pd
import pytest

import wsreplay
from wsreplay.exceptions import ConfigurationError
from wsreplay.reporting import REPORT_COLUMNS, default_output
from wsreplay.reporting.html import fmt_ts

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_is_one_self_contained_page(default_report):
    rep = default_report
    html = rep.html
    assert html.startswith("<!DOCTYPE html>")
    # every figure is an inline PNG, and nothing else is fetched
    images = re.findall(r'<img class="figure" alt="([^"]+)" src="data:image/png;base64,([^"]+)"', html)
    assert [alt for alt, _ in images] == [
        "uptime timeline",
        "ACK latency over time",
        "ACK latency distribution",
        "HELLO intervals",
        "notices",
    ]
    for _alt, data in images:
        assert base64.b64decode(data).startswith(PNG)
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", html)
    assert "<script" not in html
    for anchor in ("summary", "uptime", "outages", "fleet", "latency", "hello", "notices"):
        assert f"<section id='{anchor}'>" in html
    assert set(rep.timings) >= {"load", "outages", "figures", "html"}


def test_outage_table_lists_every_outage_with_cause_and_time(capture, default_report):
    path, truth = capture
    html = default_report.html
    frames = wsreplay.load(path)
    out = wsreplay.outages(frames, level="outpost")
    assert len(out) == 3
    outage_section = html.split("<section id='outages'>")[1].split("</section>")[0]
    for row in out.itertuples():
        assert fmt_ts(row.start) in outage_section
        assert row.outpost_uuid in outage_section
        assert str(row.cause) in outage_section
    # the analysis found the outages the simulation injected, where the truth says they were
    t = truth.outages[truth.outages["level"] == "outpost"].sort_values("start")
    assert list(out["cause"].astype(str)) == list(t["cause"])
    assert (abs(out["start"].to_numpy() - t["start"].to_numpy()) < pd.Timedelta(seconds=2)).all()


def test_summary_cards_and_fleet_table(capture):
    path, _ = capture
    html = wsreplay.report(path, title="Fleet <test>").html
    assert "<title>Fleet &lt;test&gt;</title>" in html
    assert "<div class='v'>3</div><div class='k'>outposts</div>" in html
    assert "<div class='v'>3</div><div class='k'>outpost outages</div>" in html
    fleet_section = html.split("<section id='fleet'>")[1].split("</section>")[0]
    assert "2024.4.2" in fleet_section and "2024.2.1,2024.4.2" in fleet_section  # the upgrade
    assert "disk almost full" in html  # the warning notice


def test_no_secret_reaches_the_report(default_report):
    html = default_report.html
    assert "secret" not in html  # the outposts' tokens are token-<i>-secret


def test_tables_are_capped_and_say_so(capture):
    path, _ = capture
    html = wsreplay.report(path, max_rows=1).html
    assert "First 1 of 3 outages." in html
    with pytest.raises(ConfigurationError):
        wsreplay.report(path, top=1)


def test_write_report_and_frames_input(capture, tmp_path):
    path, _ = capture
    written = wsreplay.write_report(path, tmp_path / "r.html")
    assert written.read_text().count("<img ") == 5
    frames = wsreplay.load(path, columns=list(REPORT_COLUMNS))
    rep = wsreplay.report(frames, title="from frames")
    assert rep.outages == 3 and rep.outposts == 3
    assert "srcdoc=" in rep._repr_html_()
    with pytest.raises(ConfigurationError):
        wsreplay.write_report(frames)
    assert default_output(path) == path.parent / "fleet.html"


def test_empty_capture_still_renders(capture):
    path, _ = capture
    frames = wsreplay.load(path).iloc[:0]
    html = wsreplay.report(frames).html
    assert "empty capture" in html
    assert html.count("<img ") == 5


def test_hello_histogram_left_out_above_the_limit(capture):
    path, _ = capture
    html = wsreplay.report(path, hello_limit=10).html
    assert html.count("<img ") == 4
    assert "Left out: the capture has" in html


def test_progress_bar_counts_the_steps(capture, capsys):
    path, _ = capture
    rep = wsreplay.report(path, progress=True, chunk_rows=250)
    assert rep.chunks == 3
    assert set(rep.timings) >= {"load", "outposts (3 groups)", "figures", "html"}
    err = capsys.readouterr().err
    assert "report" in err and "outpost groups" in err


def test_fleet_table_shows_what_share_of_the_window_each_outpost_was_observed(default_report):
    html = default_report.html
    fleet = html[html.index("<section id='fleet'>") :]
    fleet = fleet[: fleet.index("</section>")]
    head = re.findall(r"<th>([^<]+)</th>", fleet)
    assert head[head.index("uptime") + 1] == "observed"
    assert fleet.count("%</td>") == 2 * fleet.count("<tr><td class='id'>")  # uptime and observed, per outpost
