"""``wsreplay demo``: mock authentik + simulated fleet through the real recorder -> a report showing the outages."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from report_support import render_in_chromium

from wsreplay.cli import main
from wsreplay.cli.demo import demo_scenario
from wsreplay.exceptions import ConfigurationError
from wsreplay.sim import Truth

#: The analysis names the server's 1012 close after what the capture shows: authentik closed the socket.
CAUSE = {"server_restart": "upstream_close"}


def _outage_rows(html: str) -> pd.DataFrame:
    section = html.split("<section id='outages'>")[1].split("</section>")[0]
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", section)[1:]:
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
        rows.append({"start": pd.Timestamp(cells[0], tz="UTC"), "cause": cells[3], "outpost_uuid": cells[4]})
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_demo_report_shows_the_injected_outages_where_the_truth_says(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--duration", "15", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = out / "report.html"
    assert f"report:   {report}" in printed
    assert "outposts: 6" in printed and "ACK latency: p50" in printed

    truth = Truth.load(out / "truth")
    injected = truth.outages[truth.outages["level"] == "outpost"]
    # one fault of each outpost kind, plus the server restart that drops every outpost
    assert {"disconnect", "silent", "restart", "server_restart"} <= set(injected["cause"])
    shown = _outage_rows(report.read_text())
    assert len(shown) == len(injected)
    for t in injected.itertuples():
        mine = shown[shown["outpost_uuid"] == t.outpost_uuid]
        gap = (mine["start"] - t.start).abs()
        assert len(gap) and gap.min() < pd.Timedelta(seconds=3), (t.cause, t.start)
        assert mine.loc[gap.idxmin(), "cause"] == CAUSE.get(t.cause, t.cause).replace("_", " ")
    assert "not found" not in printed

    page = render_in_chromium(report)
    assert page.console_errors == []
    assert page.images and all(i["complete"] and i["width"] > 300 for i in page.images)
    assert "uptime timeline" in [i["alt"] for i in page.images]
    assert "upstream close" in page.facts["text"] and "disconnect" in page.facts["text"]


def test_demo_refuses_a_too_short_run_and_a_used_directory(tmp_path, capsys):
    with pytest.raises(ConfigurationError):
        demo_scenario(5.0)
    with pytest.raises(ConfigurationError):
        demo_scenario(60.0, outposts=3)
    (tmp_path / "capture").mkdir()
    (tmp_path / "capture" / "x.parquet").write_bytes(b"")
    assert main(["demo", "--duration", "15", "--out", str(tmp_path)]) == 2
    assert "already holds a capture" in capsys.readouterr().err


def test_demo_scenario_scales_its_faults_to_the_duration():
    sc = demo_scenario(60.0)
    kinds = [f.kind for f in sc.faults]
    assert kinds == ["disconnect", "silent", "restart", "upgrade", "latency_spike", "server_restart"]
    assert all(0 < f.at < 60.0 for f in sc.faults)
    assert [f.at for f in demo_scenario(120.0).faults] == [2 * f.at for f in sc.faults]
