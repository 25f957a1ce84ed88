"""Serving a capture as the recorded authentik, with real websockets clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest
from replay_support import HELLO, MS, PK, TOKEN
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from wsreplay.events import ConnectionLog
from wsreplay.exceptions import ConfigurationError
from wsreplay.playback import ReplayServer, serve
from wsreplay.playback.schedule import build_plan
from wsreplay.protocol import decode, encode_ack, encode_trigger_update
from wsreplay.schema import rows_to_table, table_to_frames

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def names(messages):
    return [decode(m, endpoint="outpost")["instruction_name"] for _, m in messages]


async def talk(url, sends, *, headers=AUTH, wait=0.0, path=f"/ws/outpost/{PK}/?instance_uuid=inst-1&attempt=0"):
    """Connect, send each frame, collect what arrives for *wait* seconds after the last one."""
    got = []
    async with connect(url.replace("http", "ws") + path, additional_headers=headers) as ws:
        t0 = time.monotonic()
        for frame in sends:
            await ws.send(frame)
        try:
            while True:
                msg = await asyncio.wait_for(ws.recv(), wait)
                got.append((time.monotonic() - t0, msg))
        except TimeoutError:
            pass
    return got


def test_hellos_get_the_recorded_acks_and_pushes_come_at_their_offsets(capture):
    async def main():
        async with ReplayServer(capture, tokens=TOKEN, record=True) as server:
            got = await talk(server.url, [HELLO, HELLO], wait=0.4)
            return got, server.stats, server.frames()

    got, stats, frames = asyncio.run(main())
    assert names(got) == ["ACK", "ACK", "TRIGGER_UPDATE"]
    assert got[0][1] == encode_ack()  # byte for byte as recorded
    # recorded at +150 ms from the open (the server opens a moment before this client sees it open)
    assert got[2][0] >= 0.1
    assert stats.connections == 1 and stats.frames_in == 2 and stats.pushes == 1
    # what the server saw is a capture too
    assert list(frames["event"].astype(str))[:1] == ["open"]
    assert (frames["direction"] == "to_peer").sum() == 3


def test_speed_divides_latencies_and_push_offsets(capture):
    async def main():
        async with ReplayServer(capture, speed=1000) as server:
            return await talk(server.url, [HELLO], wait=0.2)

    got = asyncio.run(main())
    # at 1000x the push (recorded at +150 ms) is due 0.15 ms after the open: it may beat the ACK
    assert sorted(names(got)) == ["ACK", "TRIGGER_UPDATE"]


def test_frames_beyond_the_script_are_answered_by_analogy(capture):
    async def main():
        async with ReplayServer(capture, speed=1000) as server:
            got = await talk(server.url, [HELLO] * 5, wait=0.2)
            return got, server.stats

    got, stats = asyncio.run(main())
    assert names(got).count("ACK") == 5 and stats.by_analogy == 3


def test_malformed_frames_are_answered_by_dropping_the_connection(capture):
    async def main():
        async with ReplayServer(capture) as server:
            url = server.ws_url + f"/ws/outpost/{PK}/"
            async with connect(url) as ws:
                await ws.send("this is not json")
                with pytest.raises(ConnectionClosedError):
                    await asyncio.wait_for(ws.recv(), 5)
                return ws.close_code, server.stats.dropped

    code, dropped = asyncio.run(main())
    assert code == 1006 and dropped == 1


def test_unknown_paths_and_bad_tokens_are_refused_with_403(capture):
    async def status(url, headers=None):
        try:
            async with connect(url, additional_headers=headers or {}):
                return 101
        except InvalidStatus as exc:
            assert exc.response.body == b""
            return exc.response.status_code

    async def main():
        async with ReplayServer(capture, tokens={PK: TOKEN}) as server:
            base = server.ws_url
            return [
                await status(base + "/ws/outpost/other/", AUTH),
                await status(base + f"/ws/outpost/{PK}/"),
                await status(base + f"/ws/outpost/{PK}/", {"Authorization": "Bearer nope"}),
                await status(base + f"/ws/outpost/{PK}/", AUTH),
                await status(base + "/ws/client/"),
                server.stats.refused,
            ]

    assert asyncio.run(main()) == [403, 403, 403, 101, 101, 3]


def test_client_notices_are_pushed(capture):
    async def main():
        async with ReplayServer(capture) as server:
            return await talk(server.url, [], headers={}, path="/ws/client/", wait=0.3)

    got = asyncio.run(main())
    assert len(got) == 1 and decode(got[0][1], endpoint="client")["message"] == "hello"
    assert got[0][0] >= 0.025  # recorded at +50 ms


def test_a_recorded_server_restart_closes_with_1012(t0):
    log = ConnectionLog("cap", f"/ws/outpost/{PK}/", conn_id="c")
    rows = [
        log.open(t0),
        log.message(t0 + MS, "to_server", HELLO),
        log.message(t0 + 2 * MS, "to_peer", encode_ack()),
        log.message(t0 + 5 * MS, "to_peer", encode_trigger_update()),
        # the close comes 1 s in: late enough that a loaded machine still delivers the HELLO before it
        log.close(t0 + 1000 * MS, "to_peer", code=1012, reason="restart"),
    ]
    frames = table_to_frames(rows_to_table(rows))

    async def main():
        async with ReplayServer(frames) as server:
            async with connect(server.ws_url + f"/ws/outpost/{PK}/") as ws:
                await ws.send(HELLO)
                got = [await ws.recv(), await ws.recv()]
                with pytest.raises(Exception):  # noqa: B017 - ConnectionClosedOK
                    await asyncio.wait_for(ws.recv(), 5)
                return got, ws.close_code

    got, code = asyncio.run(main())
    assert [decode(m, endpoint="outpost")["instruction_name"] for m in got] == ["ACK", "TRIGGER_UPDATE"]
    assert code == 1012


def test_reconnects_take_the_next_recorded_connection(capture):
    async def main():
        async with ReplayServer(capture, speed=1000) as server:
            first = await talk(server.url, [HELLO, HELLO], path=f"/ws/outpost/{PK}/", wait=0.1)
            second = await talk(server.url, [HELLO], path=f"/ws/outpost/{PK}/", wait=0.1)
            return first, second

    first, second = asyncio.run(main())
    assert sorted(names(first)) == ["ACK", "ACK", "TRIGGER_UPDATE"]  # conn-a's script
    assert names(second) == ["ACK"]  # conn-b's script: no push


def test_blocking_handle(capture):
    handle = serve(capture, port=0)
    try:
        assert handle.url.startswith("http://127.0.0.1:") and handle.port > 0
        got = asyncio.run(talk(handle.url, [HELLO], headers={}, wait=0.1))
        assert names(got)[0] == "ACK"
    finally:
        handle.stop()
    assert handle.stats.connections == 1


def test_nothing_to_serve(t0):
    log = ConnectionLog("cap", f"/ws/outpost/{PK}/")
    frames = table_to_frames(rows_to_table([log.error(t0, "refused", status=403)]))
    with pytest.raises(ConfigurationError, match="no accepted connection"):
        ReplayServer(frames)


def test_filters_with_a_ready_plan_are_refused_as_replay_refuses_them(capture):
    # A plan is already filtered: serve() used to drop the filters given with it without a word.
    plan = build_plan(capture)
    with pytest.raises(ConfigurationError, match="pass a capture, not a plan"):
        ReplayServer(plan, endpoint="client")
    assert ReplayServer(plan).plan is plan
