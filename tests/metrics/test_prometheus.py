"""The shipped alert rules, checked by promtool and run by a real Prometheus scraping a recorder.

A Prometheus server (Debian's ``prometheus`` package, installed by ``make peers``) is started
on 127.0.0.1 with a temporary configuration: it scrapes a recorder with ``--metrics`` in front
of a simulated fleet every second and evaluates ``contrib/prometheus/wsreplay-alerts.yml``. The
simulator takes one outpost down; a PromQL query over Prometheus' HTTP API returns that outpost,
and only it, and its ``WsreplayOutpostDown`` alert is pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from record_support import mock

from wsreplay.record import Recorder
from wsreplay.sim import Fault, OutpostSpec, Scenario, run_fleet_async

RULES = Path(__file__).parents[2] / "contrib" / "prometheus"
UP, DOWN = "00000000-0000-4000-8000-0000000000b0", "00000000-0000-4000-8000-0000000000b1"
TOKENS = {UP: "tok-up", DOWN: "tok-down"}


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        reason = f"{binary} is not installed (Debian package prometheus; `make peers` installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " - every peer must be present under CI=true")
        pytest.skip(reason)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api(base: str, path: str, **params: str) -> dict:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=5) as resp:
        doc = json.loads(resp.read())
    assert doc["status"] == "success", doc
    return doc["data"]


@contextlib.contextmanager
def prometheus(tmp: Path, target: str):
    """A Prometheus server on 127.0.0.1 scraping *target* every second, with the shipped rules."""
    binary = _need("prometheus")
    shutil.copy(RULES / "wsreplay-alerts.yml", tmp / "wsreplay-alerts.yml")
    (tmp / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 900ms}\n"
        "rule_files: [wsreplay-alerts.yml]\n"
        f"scrape_configs:\n  - job_name: wsreplay\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    port = _free_port()
    log = (tmp / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(base + "/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        break
            assert proc.poll() is None, (tmp / "prometheus.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_promtool_checks_the_rules_and_their_unit_tests():
    promtool = _need("promtool")
    checked = subprocess.run([promtool, "check", "rules", "wsreplay-alerts.yml"], cwd=RULES, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    tested = subprocess.run([promtool, "test", "rules", "wsreplay-alerts.test.yml"], cwd=RULES, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    config = subprocess.run([promtool, "check", "config", "prometheus.example.yml"], cwd=RULES, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert config.returncode == 0, config.stdout + config.stderr


def test_a_real_prometheus_finds_the_outpost_the_simulator_took_down(tmp_path):
    _need("prometheus")
    scenario = Scenario(
        outposts=[OutpostSpec(UP, TOKENS[UP]), OutpostSpec(DOWN, TOKENS[DOWN])],
        duration=60.0,  # cancelled as soon as Prometheus has seen it
        interval=0.3,
        jitter=0.0,
        ack_latency=0.001,
        faults=[Fault("disconnect", DOWN, at=2.0, duration=120.0)],
        seed=5,
    )

    async def main() -> tuple[list, list, list]:
        async with mock(outposts=TOKENS) as ak:
            async with Recorder(ak.url, out=tmp_path / "cap", flush_interval=0.1, metrics="127.0.0.1:0") as rec:
                target = rec.metrics_url.removeprefix("http://")
                fleet = asyncio.ensure_future(run_fleet_async(scenario, rec.url, mock=ak))
                try:
                    with prometheus(tmp_path, target) as prom:
                        loop = asyncio.get_running_loop()
                        deadline = loop.time() + 40
                        while True:
                            await asyncio.sleep(0.5)
                            down = await asyncio.to_thread(
                                _api, prom, "/api/v1/query", query="wsreplay_outpost_up == 0"
                            )
                            alerts = await asyncio.to_thread(_api, prom, "/api/v1/alerts")
                            if down["result"] and alerts["alerts"]:
                                break
                            assert loop.time() < deadline, (down, alerts)
                        up = await asyncio.to_thread(_api, prom, "/api/v1/query", query="wsreplay_outpost_up == 1")
                        ready = await asyncio.to_thread(_api, prom, "/api/v1/query", query="wsreplay_capture_ready")
                finally:
                    fleet.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await fleet
        return down["result"], alerts["alerts"], up["result"] + ready["result"]

    down, alerts, others = asyncio.run(main())
    assert [r["metric"]["outpost"] for r in down] == [DOWN]
    assert down[0]["metric"]["job"] == "wsreplay"
    assert [(a["labels"]["alertname"], a["labels"]["outpost"], a["state"]) for a in alerts] == [
        ("WsreplayOutpostDown", DOWN, "pending")
    ]
    up, ready = others
    assert up["metric"]["outpost"] == UP
    assert ready["value"][1] == "1"
