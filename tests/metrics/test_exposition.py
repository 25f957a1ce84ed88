"""A recorder with --metrics, scraped over HTTP: the issue's series, exactly named, and readiness."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys

import pytest
from metrics_support import by_label, get, scrape, value
from record_support import PK, TOKEN, bearer, mock, outpost_url, wait_for
from websockets.asyncio.client import connect

from wsreplay.exceptions import ConfigurationError
from wsreplay.metrics.exposition import METRICS
from wsreplay.metrics.health import DEFAULT_RETENTION_S
from wsreplay.protocol import encode_hello, hello_args
from wsreplay.record import Recorder

#: The issue's table: name -> type (OpenMetrics family names drop a counter's ``_total``).
REQUIRED = {
    "wsreplay_frames": "counter",
    "wsreplay_connections_open": "gauge",
    "wsreplay_outpost_instances_connected": "gauge",
    "wsreplay_outpost_last_hello_timestamp_seconds": "gauge",
    "wsreplay_outpost_up": "gauge",
    "wsreplay_ack_latency_seconds": "histogram",
    "wsreplay_notices": "counter",
    "wsreplay_capture_pending_rows": "gauge",
    "wsreplay_capture_flush_lag_seconds": "gauge",
    "wsreplay_capture_write_errors": "counter",
    "wsreplay_capture_bytes": "counter",
}
LABELS = {
    "wsreplay_frames": {"endpoint", "direction", "instruction"},
    "wsreplay_connections_open": {"endpoint"},
    "wsreplay_outpost_instances_connected": {"outpost"},
    "wsreplay_outpost_last_hello_timestamp_seconds": {"outpost"},
    "wsreplay_outpost_up": {"outpost"},
    "wsreplay_notices": {"level"},
}


async def _hellos(rec: Recorder, pk: str, token: str, instance: str, n: int) -> None:
    async with connect(outpost_url(rec, pk, f"instance_uuid={instance}"), additional_headers=bearer(token)) as ws:
        for _ in range(n):
            await ws.send(encode_hello(hello_args(uuid=instance, version="2024.2.1")))
            await ws.recv()


def test_the_issues_series_are_served_exactly_named(tmp_path):
    async def main():
        async with mock() as ak:
            async with Recorder(ak.url, out=tmp_path / "cap", flush_interval=0.1, metrics="127.0.0.1:0") as rec:
                base = rec.metrics_url
                assert base is not None and base.startswith("http://127.0.0.1:")
                browser = await connect(f"{rec.ws_url}/ws/client/")
                outpost = await connect(outpost_url(rec, PK, "instance_uuid=i-open"), additional_headers=bearer())
                await outpost.send(encode_hello(hello_args(uuid="i-open", version="2024.2.1")))
                await outpost.recv()
                await _hellos(rec, PK, TOKEN, "i-1", 1)  # one HELLO each: the interval stays 10 s
                await ak.push_notice("saved", level="success")
                await browser.recv()
                await wait_for(lambda: rec.sink.writer.stats.rows_written >= 9)
                fams = await asyncio.to_thread(scrape, base)
                ready = await asyncio.to_thread(get, base + "/-/ready")
                other = await asyncio.to_thread(get, base + "/nothing")
                plain = await asyncio.to_thread(get, base + "/metrics", accept="text/plain")
                await outpost.close()
                await browser.close()
        return fams, ready, other, plain

    fams, ready, other, plain = asyncio.run(main())
    for name, kind in REQUIRED.items():
        assert fams[name].type == kind, name
    for name, labels in LABELS.items():
        assert all(set(s.labels) == labels for s in fams[name].samples), name
    assert {f.name if f.type != "counter" else f.name + "_total" for f in fams.values()} >= set(METRICS)
    assert value(fams, "wsreplay_frames", "wsreplay_frames_total", endpoint="outpost", direction="to_server",
                 instruction="HELLO") == 2  # fmt: skip
    assert value(fams, "wsreplay_frames", "wsreplay_frames_total", endpoint="outpost", direction="to_peer",
                 instruction="ACK") == 2  # fmt: skip
    assert value(fams, "wsreplay_frames", "wsreplay_frames_total", endpoint="client", direction="to_peer",
                 instruction="") == 1  # fmt: skip
    assert by_label(fams, "wsreplay_connections_open", "endpoint") == {"outpost": 1, "client": 1}
    assert by_label(fams, "wsreplay_outpost_up", "outpost") == {PK: 1}
    assert by_label(fams, "wsreplay_outpost_instances_connected", "outpost") == {PK: 1}  # i-1 has gone
    assert value(fams, "wsreplay_ack_latency_seconds", "wsreplay_ack_latency_seconds_count", endpoint="outpost") == 2
    assert value(fams, "wsreplay_ack_latency_seconds", "wsreplay_ack_latency_seconds_bucket", endpoint="outpost",
                 le="+Inf") == 2  # fmt: skip
    assert by_label(fams, "wsreplay_notices", "level") == {"success": 1}
    assert value(fams, "wsreplay_capture_write_errors", "wsreplay_capture_write_errors_total") == 0
    assert value(fams, "wsreplay_capture_bytes", "wsreplay_capture_bytes_total") > 0
    assert value(fams, "wsreplay_capture_ready") == 1
    assert 0 <= value(fams, "wsreplay_capture_flush_lag_seconds") < 5
    assert ready[0] == 200 and ready[2].startswith("ready:")
    assert other[0] == 404
    assert plain[0] == 200 and plain[1].startswith("text/plain") and "wsreplay_outpost_up{" in plain[2]


def test_readiness_is_503_while_the_disk_refuses_the_capture_and_200_when_it_takes_it_again(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a small tmpfs here ({exc}); the writer's own test covers WriterStats.failing")

    async def main():
        async with mock() as ak:
            async with Recorder(ak.url, out=disk / "cap", flush_interval=0.1, metrics="127.0.0.1:0") as rec:
                base = rec.metrics_url
                assert (await asyncio.to_thread(get, base + "/-/ready"))[0] == 200
                filler = disk / "filler"
                with contextlib.suppress(OSError), filler.open("wb") as f:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                await _hellos(rec, PK, TOKEN, "i-1", 30)
                await wait_for(lambda: rec.sink.writer.stats.failing)
                refused = await asyncio.to_thread(get, base + "/-/ready")
                fams = await asyncio.to_thread(scrape, base)
                filler.unlink()
                await wait_for(lambda: not rec.sink.writer.stats.failing and rec.sink.pending == 0)
                back = await asyncio.to_thread(get, base + "/-/ready")
        return refused, fams, back

    try:
        refused, fams, back = asyncio.run(main())
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False, capture_output=True)
    assert refused[0] == 503 and "cannot write the capture" in refused[2], refused
    assert value(fams, "wsreplay_capture_ready") == 0
    assert value(fams, "wsreplay_capture_write_errors", "wsreplay_capture_write_errors_total") >= 1
    assert value(fams, "wsreplay_capture_pending_rows") > 0
    assert back[0] == 200, back


def test_metrics_options_fail_with_one_clear_line(tmp_path):
    with pytest.raises(ConfigurationError, match=r"--metrics 'nope:x': the port must be a number"):
        Recorder("http://127.0.0.1:1", out=tmp_path, metrics="nope:x")
    with pytest.raises(ConfigurationError, match="metrics_retention"):
        Recorder("http://127.0.0.1:1", out=tmp_path, metrics="127.0.0.1:0", metrics_retention=0)
    assert Recorder.__init__.__kwdefaults__["metrics_retention"] == DEFAULT_RETENTION_S


def test_without_prometheus_client_record_metrics_says_how_to_install_it(tmp_path):
    """The extra is optional: a recorder asked for metrics without it fails with one line, no traceback."""
    script = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from wsreplay.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = ["record", "--upstream", "http://127.0.0.1:1", "--out", str(tmp_path / "cap"), "--listen", "127.0.0.1:0",
            "--metrics", "127.0.0.1:0"]  # fmt: skip
    res = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'wsreplay[metrics]'" in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_cli_record_serves_metrics_until_sigterm(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsreplay", "record", "--upstream", "http://127.0.0.1:1", "--out", str(tmp_path / "c"),
         "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--metrics-retention", "60", "--status-interval", "0"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline() for _ in range(2)]
        said = next(line for line in lines if "metrics at " in line)
        base = said.split("metrics at ")[1].split("/metrics")[0]
        fams = scrape(base)
        assert by_label(fams, "wsreplay_connections_open", "endpoint") == {"outpost": 0, "client": 0}
        assert get(base + "/-/ready")[0] == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert proc.returncode == 0


def _parsed(text: bytes) -> list:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    families = text_string_to_metric_families(text.decode())
    return [
        (
            f.name,
            f.type,
            f.unit,
            f.documentation,
            sorted((s.name, sorted(s.labels.items()), s.value) for s in f.samples),
        )
        for f in families
    ]


def test_our_openmetrics_text_is_prometheus_clients_with_tricky_label_values():
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
    from prometheus_client.openmetrics.exposition import generate_latest

    from wsreplay.metrics.exposition import render_openmetrics

    class Tricky:
        def collect(self):
            doc = 'help with "quotes" and \\ and\nnewline'
            c = CounterMetricFamily("wsreplay_notices_total", doc, labels=["level"])
            for i, level in enumerate(['say "hi"', "back\\slash", "new\nline", "ünïcode", ""]):
                c.add_metric([level], i)
            yield c
            g = GaugeMetricFamily("wsreplay_capture_flush_lag_seconds", "lag", unit="seconds")
            g.add_metric([], 0.1 + 0.2)
            yield g
            h = HistogramMetricFamily("wsreplay_ack_latency_seconds", "latency", labels=["endpoint"], unit="seconds")
            h.add_metric(["outpost"], buckets=[("0.005", 3), ("+Inf", 5)], sum_value=1e-7)
            yield h
            yield GaugeMetricFamily("wsreplay_x", "big and odd values", value=float("inf"))
            yield GaugeMetricFamily("wsreplay_y", "tiny", value=1.5e-300)

        def describe(self):
            return []

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Tricky())
    ours = render_openmetrics(registry.collect())
    assert ours.endswith(b"# EOF\n")
    assert _parsed(ours) == _parsed(generate_latest(registry))


def test_start_recording_serves_metrics_too(tmp_path):
    from wsreplay import start_recording

    ak = mock().start_in_thread()
    try:
        with start_recording(ak.url, out=tmp_path / "cap", metrics="127.0.0.1:0", metrics_retention=60) as rec:
            assert rec.metrics_url is not None
            assert get(rec.metrics_url + "/-/ready")[0] == 200
            fams = scrape(rec.metrics_url)
            assert value(fams, "wsreplay_capture_ready") == 1
            assert value(fams, "wsreplay_outposts_tracked") == 0
        assert rec.metrics_url is None  # stopped: the endpoint is closed with the recorder
    finally:
        ak.stop()
