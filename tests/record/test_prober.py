"""The probe against the simulated authentik."""

from __future__ import annotations

import asyncio
import json

import pytest
from record_support import COOKIE, PK, TOKEN, assert_no_secret_bytes, mock, wait_for

from wsreplay import ack_latency, load
from wsreplay.cli import main as cli_main
from wsreplay.exceptions import ConfigurationError
from wsreplay.record import Probe, probe


def test_probe_records_acks_pushes_notices_and_reconnects(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTHENTIK_TOKEN", TOKEN)
    monkeypatch.setenv("AUTHENTIK_SESSION", COOKIE)
    out = tmp_path / "probe"

    async def main():
        async with mock(sessions={COOKIE}) as ak:
            p = Probe(ak.url, out=out, outpost=PK, client=True, interval=0.05, backoff=(0.05, 0.2))
            async with p:
                task = asyncio.create_task(p.run())
                await wait_for(lambda: p.stats.acks >= 3 and p.stats.connections == 2)
                await ak.push_trigger_update(PK)
                await ak.push_session_end("f" * 64)
                await ak.push_notice("maintenance tonight", level="warning")
                await wait_for(lambda: {"TRIGGER_UPDATE", "SESSION_END", "message"} <= set(p.stats.pushes))
                await ak.restart(downtime=0.0)
                await wait_for(lambda: p.stats.connections >= 4)
                acks = p.stats.acks
                await wait_for(lambda: p.stats.acks > acks)
                p.stop()
                return await task

    stats = asyncio.run(main())
    assert stats.reconnects >= 2 and stats.latencies_s and min(stats.latencies_s) > 0
    frames = load(out)
    opens = frames[frames.event == "open"]
    outpost_opens = opens[opens.endpoint == "outpost"]
    assert {q.split("attempt=")[1] for q in outpost_opens["query"]} >= {"0", "1"}
    assert outpost_opens.instance_uuid.nunique() == 1  # one probe process, one instance
    closes = frames[frames.event == "close"]
    assert (closes.close_code == 1012).sum() == 2 and set(closes[closes.close_code == 1012].direction) == {"to_peer"}
    received = frames[(frames.event == "message") & (frames.direction == "to_peer")]
    assert {"ACK", "TRIGGER_UPDATE", "SESSION_END"} <= set(received.instruction_name.dropna())
    notice = received[received.endpoint == "client"]
    assert json.loads(notice.payload.iloc[0])["message"] == "maintenance tonight"
    assert notice.level.iloc[0] == "warning"
    latency = ack_latency(frames)
    assert latency.latency_s.notna().sum() >= 3
    assert_no_secret_bytes(out)


def test_refused_probe_keeps_retrying_and_records_each_refusal(tmp_path):
    async def main():
        async with mock() as ak:
            p = Probe(ak.url, out=tmp_path / "p", outpost=PK, token="bad-SECRET", interval=0.05, backoff=(0.02, 0.05))
            async with p:
                task = asyncio.create_task(p.run())
                await wait_for(lambda: p.stats.refused >= 3)
                p.stop()
                await task
            return p.stats

    stats = asyncio.run(main())
    frames = load(tmp_path / "p")
    errors = frames[frames.event == "error"]
    assert len(errors) == stats.refused >= 3 and set(errors.status) == {403}
    assert stats.connections == 0
    assert_no_secret_bytes(tmp_path / "p", ("bad-SECRET",))


def test_blocking_probe_returns_the_frames(tmp_path):
    ak = mock().start_in_thread()
    try:
        frames = probe(ak.url, out=tmp_path / "p", outpost=PK, token=TOKEN, interval=0.05, duration=0.5)
    finally:
        ak.stop()
    sent = frames[(frames.direction == "to_server") & (frames.event == "message")]
    assert len(sent) >= 2 and set(sent.instruction_name) == {"HELLO"}
    assert frames[frames.event == "close"].close_code.tolist() == [1000]


def test_probe_needs_a_token_from_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("AUTHENTIK_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="AUTHENTIK_TOKEN"):
        Probe("http://127.0.0.1:1", out=tmp_path / "p", outpost=PK)
    code = cli_main(["probe", "--url", "http://127.0.0.1:1", "--out", str(tmp_path / "p"), "--outpost", PK])
    err = capsys.readouterr().err
    assert code == 2 and "AUTHENTIK_TOKEN" in err and len(err.strip().splitlines()) == 1


def test_probe_command_runs_for_its_duration_and_summarises(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUTHENTIK_TOKEN", TOKEN)
    ak = mock().start_in_thread()
    try:
        code = cli_main(
            ["probe", "--url", ak.url, "--out", str(tmp_path / "p"), "--outpost", PK, "--client",
             "--interval", "0.1", "--duration", "0.6"]
        )  # fmt: skip
    finally:
        ak.stop()
    out = capsys.readouterr()
    assert code == 0
    assert "2 connections (0 reconnects, 0 refused)" in out.out and "HELLO->ACK p50" in out.out
    assert TOKEN not in out.out + out.err
    frames = load(tmp_path / "p")
    assert set(frames.endpoint) == {"outpost", "client"}
