"""The recording proxy end to end over loopback, in front of the simulated authentik."""

from __future__ import annotations

import asyncio
import json

import pytest
from record_support import (
    COOKIE,
    PK,
    PK2,
    TOKEN,
    TOKEN2,
    assert_no_secret_bytes,
    bearer,
    messages,
    mock_and_recorder,
    outpost_url,
    wait_for,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wsreplay import load
from wsreplay.protocol import encode_hello, hello_args
from wsreplay.record import Recorder


def _hello(instance: str, **kw) -> str:
    return encode_hello(hello_args(uuid=instance, version="2023.10.0", hostname="h", **kw))


def test_every_frame_both_ways_is_recorded_byte_identical_in_order(tmp_path):
    out = tmp_path / "cap"
    sent: dict[str, list[tuple[str, str]]] = {}

    async def outpost(rec, pk, token, instance):
        query = f"instance_uuid={instance}&attempt=0"
        seen: list[tuple[str, str]] = []
        async with connect(outpost_url(rec, pk, query), additional_headers=bearer(token), compression=None) as ws:
            for i in range(5):
                frame = _hello(instance) if i != 2 else '{"instruction":1,"args":{"uuid":"' + instance + '","ü":"ßé€"}}'
                await ws.send(frame)
                seen.append(("to_server", frame))
                seen.append(("to_peer", await ws.recv()))
        sent[query] = seen

    async def main():
        async with mock_and_recorder(out) as (ak, rec):
            async with connect(
                f"{rec.ws_url}/ws/client/", additional_headers={"Cookie": f"authentik_session={COOKIE}"}
            ) as browser:
                await asyncio.gather(
                    outpost(rec, PK, TOKEN, "inst-a"),
                    outpost(rec, PK, TOKEN, "inst-b"),
                    outpost(rec, PK2, TOKEN2, "inst-c"),
                )
                await ak.push_notice("hello browsers", level="success")
                notice = await browser.recv()
            return rec.frames(), notice

    frames, notice = asyncio.run(main())
    by_query = frames[frames.event == "open"].set_index("query").conn_id
    for query, seen in sent.items():
        assert messages(frames, by_query[query]) == seen
        conn = frames[frames.conn_id == by_query[query]]
        assert set(conn.endpoint) == {"outpost"}
        assert conn.instance_uuid.nunique() == 1 and conn.instance_uuid.iloc[0] == query.split("&")[0].split("=")[1]
        assert list(conn.seq) == list(range(len(conn)))
    opens = frames[frames.event == "open"]
    assert set(opens.status) == {101}
    client = frames[frames.endpoint == "client"]
    assert list(client[client.event == "message"].payload) == [notice]
    assert client[client.event == "message"].level.iloc[0] == "success"
    outposts = frames[(frames.endpoint == "outpost") & (frames.event == "message")]
    assert set(outposts.outpost_uuid) == {PK, PK2}
    assert set(outposts[outposts.direction == "to_peer"].instruction_name) == {"ACK"}
    assert outposts.parse_error.isna().all()
    assert_no_secret_bytes(out)


def test_refused_handshake_keeps_its_status_and_is_recorded(tmp_path):
    async def main():
        async with mock_and_recorder(tmp_path / "cap") as (_ak, rec):
            with pytest.raises(InvalidStatus) as bad_token:
                async with connect(outpost_url(rec), additional_headers=bearer("wrong-SECRET-token")):
                    pass
            with pytest.raises(InvalidStatus) as no_token:
                async with connect(outpost_url(rec, PK2)):
                    pass
            return rec.frames(), bad_token.value.response, no_token.value.response

    frames, bad, missing = asyncio.run(main())
    assert bad.status_code == 403 and missing.status_code == 403
    assert bad.body == b""  # the upstream's answer, untouched
    errors = frames[frames.event == "error"]
    assert list(errors.status) == [403, 403]
    assert set(errors.outpost_uuid) == {PK, PK2}
    assert errors.close_reason.str.contains("HTTP 403").all()
    assert not (frames.event == "open").any()
    assert_no_secret_bytes(tmp_path / "cap", ("wrong-SECRET-token",))


def test_upstream_down_is_a_clean_502_and_the_recorder_keeps_serving(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]

    async def main():
        async with Recorder(f"http://127.0.0.1:{dead}", out=tmp_path / "cap", flush_interval=0.2) as rec:
            statuses = []
            for _ in range(3):
                with pytest.raises(InvalidStatus) as exc:
                    async with connect(outpost_url(rec), additional_headers=bearer()):
                        pass
                statuses.append(exc.value.response.status_code)
            reader, writer = await asyncio.open_connection(*rec.address)
            writer.write(b"GET /api/v3/root/config/ HTTP/1.1\r\nHost: x\r\n\r\n")
            status_line = await reader.readline()
            writer.close()
            return statuses, status_line, rec.frames()

    statuses, status_line, frames = asyncio.run(main())
    assert statuses == [502, 502, 502]
    assert status_line.startswith(b"HTTP/1.1 502")
    errors = frames[frames.event == "error"]
    assert len(errors) == 3 and set(errors.status) == {502}
    assert errors.close_reason.str.contains("unreachable").all()


def test_http_requests_pass_through_unchanged(tmp_path):
    async def request(server, raw: bytes) -> tuple[bytes, bytes]:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port if hasattr(server, "port") else server.address[1]
        )
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        body = b""
        if b"chunked" in head.lower():
            while True:
                size = int((await reader.readline()).strip(), 16)
                chunk = await reader.readexactly(size + 2)
                body += chunk[:-2]
                if size == 0:
                    break
        else:
            line = next(ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length"))
            length = int(line.split(b":")[1])
            body = await reader.readexactly(length)
        writer.close()
        return head, body

    async def main():
        async with mock_and_recorder(tmp_path / "cap") as (ak, rec):
            direct = await request(ak, b"GET /api/v3/root/config/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            via = await request(rec, b"GET /api/v3/root/config/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            body = json.dumps({"name": "ünïcode", "n": list(range(50))}).encode()
            post = (
                b"POST /api/v3/echo/?a=1 HTTP/1.1\r\nHost: x\r\nX-Trace: abc\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            echo = await request(rec, post)
            stream = await request(rec, b"GET /api/v3/stream/?chunks=5 HTTP/1.1\r\nHost: x\r\n\r\n")
            stream_direct = await request(ak, b"GET /api/v3/stream/?chunks=5 HTTP/1.1\r\nHost: x\r\n\r\n")
            return direct, via, echo, body, stream, stream_direct, rec.stats.http_requests

    direct, via, echo, body, stream, stream_direct, count = asyncio.run(main())
    assert via[0].split(b"\r\n")[0] == direct[0].split(b"\r\n")[0] and via[1] == direct[1]
    assert echo[0].startswith(b"HTTP/1.1 200")
    seen = json.loads(echo[1])
    assert seen["method"] == "POST"
    assert seen["body"] == body.decode()
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["x-trace"] == "abc" and headers["x-forwarded-for"] == "127.0.0.1"
    assert b"chunked" in stream[0].lower() and stream[1] == stream_direct[1] and stream[1]
    assert count == 3


def test_upstream_restart_sends_1012_to_peers_and_the_recorder_survives(tmp_path):
    async def main():
        async with mock_and_recorder(tmp_path / "cap") as (ak, rec):
            conns = [
                await connect(outpost_url(rec, PK, f"instance_uuid=i{n}&attempt=0"), additional_headers=bearer())
                for n in range(3)
            ]
            for ws in conns:
                await ws.send(_hello("x"))
                await ws.recv()
            await ak.restart(downtime=0.0)
            codes = []
            for ws in conns:
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                codes.append(ws.close_code)
            async with connect(outpost_url(rec, PK, "instance_uuid=i0&attempt=1"), additional_headers=bearer()) as ws:
                await ws.send(_hello("i0"))
                ack = await ws.recv()
            return codes, ack, rec.frames()

    codes, ack, frames = asyncio.run(main())
    assert codes == [1012, 1012, 1012]
    assert json.loads(ack)["instruction"] == 0
    closes = frames[frames.event == "close"]
    assert (closes.close_code == 1012).sum() == 3
    assert set(closes[closes.close_code == 1012].direction) == {"to_peer"}
    assert (frames.event == "open").sum() == 4


def test_peer_that_vanishes_without_a_close_frame_is_recorded_1006(tmp_path):
    async def main():
        async with mock_and_recorder(tmp_path / "cap") as (_ak, rec):
            ws = await connect(outpost_url(rec, PK, "instance_uuid=gone"), additional_headers=bearer())
            await ws.send(_hello("gone"))
            await ws.recv()
            ws.transport.abort()
            await wait_for(lambda: rec.stats.connections_open == 0)
            return rec.frames()

    frames = asyncio.run(main())
    close = frames[frames.event == "close"]
    assert list(close.close_code) == [1006] and list(close.direction) == ["to_server"]
    error = frames[frames.event == "error"]
    assert len(error) == 1 and "without a close frame" in error.close_reason.iloc[0]
    assert error.instance_uuid.iloc[0] == "gone"


def test_malformed_frames_are_relayed_and_recorded_with_parse_error(tmp_path):
    async def main():
        async with mock_and_recorder(tmp_path / "cap") as (_ak, rec):
            ws = await connect(outpost_url(rec, PK, "instance_uuid=bad"), additional_headers=bearer())
            await ws.send("this is not json")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            await wait_for(lambda: rec.stats.connections_open == 0)
            return ws.close_code, rec.frames()

    code, frames = asyncio.run(main())
    assert code == 1006  # authentik (and the mock) drop the socket; the recorder relays that
    msg = frames[frames.event == "message"]
    assert list(msg.payload) == ["this is not json"]
    assert msg.parse_error.iloc[0].startswith("not JSON")
    close = frames[frames.event == "close"]
    assert list(close.close_code) == [1006] and list(close.direction) == ["to_peer"]


def test_oversize_frame_is_refused_with_1009_and_recorded(tmp_path):
    async def main():
        async with mock_and_recorder(tmp_path / "cap", max_size=1000) as (_ak, rec):
            ws = await connect(outpost_url(rec, PK, "instance_uuid=big"), additional_headers=bearer())
            await ws.send(_hello("big"))
            await ws.recv()
            await ws.send("x" * 5000)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            await wait_for(lambda: rec.stats.connections_open == 0)
            return ws.close_code, rec.frames()

    code, frames = asyncio.run(main())
    assert code == 1009
    error = frames[frames.event == "error"]
    assert len(error) == 1 and error["size"].iloc[0] == 5000 and error.direction.iloc[0] == "to_server"
    assert not (frames.payload.fillna("").str.len() > 1000).any()


def test_stopping_closes_peers_with_1001_and_seals_the_capture(tmp_path):
    out = tmp_path / "cap"

    async def main():
        async with mock_and_recorder(out) as (_ak, rec):
            ws = await connect(outpost_url(rec, PK, "instance_uuid=s"), additional_headers=bearer())
            await ws.send(_hello("s"))
            await ws.recv()
            await rec.stop()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code

    assert asyncio.run(main()) == 1001
    assert not list(out.glob("*.arrows")) and list(out.glob("*.parquet"))
    frames = load(out)
    close = frames[frames.event == "close"]
    assert list(close.close_code) == [1001]


def test_a_peer_close_code_and_reason_reach_the_upstream(tmp_path):
    async def main():
        async with mock_and_recorder(tmp_path / "cap") as (ak, rec):
            ws = await connect(outpost_url(rec, PK, "instance_uuid=bye"), additional_headers=bearer())
            await ws.send(_hello("bye"))
            await ws.recv()
            await ws.close(4000, "outpost shutting down")
            await wait_for(lambda: any(e["event"] == "close" for e in ak.log))
            return [e for e in ak.log if e["event"] == "close"], rec.frames()

    seen, frames = asyncio.run(main())
    assert seen[0]["code"] == 4000 and "peer" in seen[0]["detail"]
    close = frames[frames.event == "close"]
    assert list(zip(close.close_code, close.close_reason, close.direction)) == [
        (4000, "outpost shutting down", "to_server")
    ]


def test_instance_learned_from_hello_is_on_every_later_row_of_repeated_frames(tmp_path):
    async def main():
        async with mock_and_recorder(tmp_path / "cap") as (ak, rec):
            async with connect(outpost_url(rec), additional_headers=bearer()) as ws:  # old outpost: no query
                await ak.push_trigger_update(PK)
                await ak.push_trigger_update(PK)
                await ws.recv()
                await ws.recv()
                for _ in range(3):
                    await ws.send(_hello("from-hello"))
                    await ws.recv()
            return rec.frames()

    frames = asyncio.run(main())
    msgs = frames[frames.event == "message"]
    assert list(msgs.instruction_name) == ["TRIGGER_UPDATE"] * 2 + ["HELLO", "ACK"] * 3
    assert msgs.instance_uuid.isna().tolist() == [True, True] + [False] * 6
    assert set(msgs.instance_uuid.dropna()) == {"from-hello"}
    assert list(frames.seq) == list(range(len(frames)))
