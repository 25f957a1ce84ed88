"""Upstream faults: a peer sees through the recorder what it sees talking to authentik directly; the capture says so."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request

import pandas as pd
from faults_support import frame, hello, raw_upstream, reset
from record_support import PK, bearer, mock
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from wsreplay.record import Recorder

SCENARIO = "upstream faults"


def _ws(url: str, query: str = "") -> str:
    return f"{url.replace('http', 'ws', 1)}/ws/outpost/{PK}/" + (f"?{query}" if query else "")


async def _handshake_outcome(url: str, **kw) -> str:
    try:
        async with connect(_ws(url), open_timeout=5, **kw):
            return "open"
    except InvalidStatus as exc:
        return f"refused {exc.response.status_code}" if exc.response.status_code != 502 else "refused"
    except (InvalidHandshake, OSError, TimeoutError):
        return "refused"


async def _restart_seen(ak, url: str) -> list[str]:
    seen = []
    async with connect(_ws(url, "instance_uuid=r1"), additional_headers=bearer()) as ws:
        await ws.send(hello("r1", "a"))
        seen.append(f"reply {len(await ws.recv())} bytes")
        restart = asyncio.create_task(ak.restart(downtime=0.8))
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            seen.append(f"closed {exc.rcvd.code if exc.rcvd else 1006}")
        # during the downtime: a refused handshake (TCP refused directly, 502 through the recorder)
        seen.append(await _handshake_outcome(url, additional_headers=bearer()))
        await restart
    seen.append(await _handshake_outcome(url, additional_headers=bearer()))
    return seen


async def _stall_seen(ak, url: str) -> list[str]:
    seen = []
    async with connect(_ws(url, "instance_uuid=s1"), additional_headers=bearer()) as ws:
        await ws.send(hello("s1", "before"))
        seen.append(await ws.recv())
        ak.stall(0.6)
        await ws.send(hello("s1", "during"))
        seen.append(await ws.recv())  # held until the stall ends, the socket stays open
        await ws.send(hello("s1", "after"))
        seen.append(await ws.recv())
        seen.append(f"open {ws.state.name}")
    return seen


async def _refused_seen(url: str) -> list[str]:
    seen = []
    for headers in ({}, bearer("not-the-token")):
        try:
            async with connect(_ws(url), additional_headers=headers):
                seen.append("open")
        except InvalidStatus as exc:
            seen.append(f"{exc.response.status_code} body={exc.response.body!r}")
    return seen


def _slow_http(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"{url}/api/v3/stream/?chunks=4&delay=0.2", timeout=10) as resp:
        return resp.status, resp.read()


def test_restart_stall_refusal_and_slow_http_look_the_same_through_the_recorder(tmp_path, figures, no_secrets):
    async def main():
        async with mock() as ak:
            direct = {
                "restart": await _restart_seen(ak, ak.url),
                "stall": await _stall_seen(ak, ak.url),
                "refused": await _refused_seen(ak.url),
                "slow http": await asyncio.to_thread(_slow_http, ak.url),
            }
            async with Recorder(ak.url, out=tmp_path / "cap", flush_interval=0.2) as rec:
                through = {
                    "restart": await _restart_seen(ak, rec.url),
                    "stall": await _stall_seen(ak, rec.url),
                    "refused": await _refused_seen(rec.url),
                    "slow http": await asyncio.to_thread(_slow_http, rec.url),
                }
                return direct, through, rec.frames()

    direct, through, frames = asyncio.run(main())
    same = [k for k in direct if direct[k] == through[k]]
    for k in direct:
        figures.add(SCENARIO, f"{k}: peer sees the same through the recorder", direct[k] == through[k], "True")
    assert same == list(direct), {k: (direct[k], through[k]) for k in direct if k not in same}
    assert direct["restart"][1:] == ["closed 1012", "refused", "open"]
    # the capture records each fault
    closes = frames[frames.event == "close"]
    assert 1012 in set(closes.close_code.dropna().astype(int))
    errors = frames[frames.event == "error"]
    assert {403} <= set(errors.status.dropna().astype(int)) and (errors.status == 502).any()
    stall = frames[(frames.event == "message") & (frames["query"].astype(str).str.contains("s1"))].sort_values("seq")
    gap = stall.ts.diff().max() / pd.Timedelta(seconds=1)
    figures.add(SCENARIO, "stall of 0.6 s: longest gap between frames in the capture (s)", round(gap, 2), ">= 0.6")
    assert gap >= 0.6
    no_secrets(SCENARIO, tmp_path / "cap")


def test_tcp_reset_mid_frame_is_a_1006_both_ways_and_recorded(tmp_path, figures):
    async def rst_mid_frame(reader, writer):
        await reader.read(1)  # the peer's first frame
        writer.write(frame(b'{"instruction": 0, "args": {}}' * 4)[:20])  # a frame cut short
        await writer.drain()
        await asyncio.sleep(0.05)
        reset(writer)

    async def seen(url: str) -> str:
        async with connect(_ws(url), additional_headers=bearer()) as ws:
            await ws.send(hello("x", "x"))
            try:
                await ws.recv()
                return "message"
            except ConnectionClosed as exc:
                return f"closed {exc.rcvd.code if exc.rcvd else 1006}"

    async def main():
        async with raw_upstream(rst_mid_frame) as up:
            direct = await seen(up)
            async with Recorder(up, out=tmp_path / "cap", flush_interval=0.2) as rec:
                through = await seen(rec.url)
                with contextlib.suppress(Exception):
                    await asyncio.sleep(0.2)
                return direct, through, rec.frames()

    direct, through, frames = asyncio.run(main())
    figures.add(SCENARIO, "TCP reset mid-frame: peer sees (direct / through)", f"{direct} / {through}")
    assert direct == through == "closed 1006"
    close = frames[frames.event == "close"]
    assert list(close.close_code) == [1006] and "upstream" in close.close_reason.iloc[0]
    assert (frames.event == "error").any()
