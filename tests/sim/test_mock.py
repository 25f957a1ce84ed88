"""MockAuthentik over real sockets on 127.0.0.1: handshake, ACKs, pushes, restarts, stalls, log."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from wsreplay.exceptions import ConfigurationError
from wsreplay.protocol import (
    ACK_FRAME,
    decode,
    encode_ack,
    encode_hello,
    encode_instruction,
    hello_args,
    outpost_path,
)
from wsreplay.sim import LatencyModel, MockAuthentik

PK = "1ee03a64-69e4-4f1e-9f06-35cc8e6de56a"
TOKEN = "outpost-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
HELLO = encode_hello(hello_args(uuid="cca661ef-f553-418e-b1a8-7065809dfd97", version="2023.10.0", hostname="h1"))


def outpost(ak: MockAuthentik, headers: dict[str, str] | None = None, query: str = "") -> Any:
    return connect(ak.ws_url + outpost_path(PK) + query, additional_headers=BEARER if headers is None else headers)


async def no_frame(ws: ClientConnection, wait: float = 0.1) -> bool:
    """True when nothing arrives within *wait* seconds (the socket stays open)."""
    try:
        await asyncio.wait_for(ws.recv(), wait)
    except TimeoutError:
        return True
    return False


def test_hello_gets_the_byte_exact_ack_and_an_ack_gets_nothing() -> None:
    async def main() -> tuple[Any, ...]:
        async with MockAuthentik(outposts={PK: TOKEN}) as ak, outpost(ak) as ws:
            await ws.send(HELLO)
            first = await ws.recv()
            await ws.send(encode_ack())
            silent = await no_frame(ws)
            await ws.send(encode_instruction(99))
            second = await ws.recv()
            return first, silent, second, [e["event"] for e in ak.log if e["conn"] is not None]

    first, silent, second, events = asyncio.run(main())
    assert first == ACK_FRAME == '{"instruction": 0, "args": {}}'
    assert silent
    assert second == ACK_FRAME
    assert events == ["open", "recv", "send", "recv", "recv", "send"]


@pytest.mark.parametrize(
    ("path", "headers", "reason"),
    [
        (outpost_path(PK), {"Authorization": "Bearer wrong"}, "bad token"),
        (outpost_path(PK), {}, "missing or non-Bearer Authorization"),
        (outpost_path(PK), {"Authorization": f"Basic {TOKEN}"}, "missing or non-Bearer Authorization"),
        (outpost_path("0b54126e-5b6d-4c6a-af51-7ba4be55819f"), BEARER, "unknown outpost"),
        ("/ws/nothing/", BEARER, "unknown WebSocket path"),
    ],
)
def test_refusals_are_http_403_with_an_empty_body(path: str, headers: dict[str, str], reason: str) -> None:
    async def main() -> tuple[InvalidStatus, list[dict[str, Any]]]:
        async with MockAuthentik(outposts={PK: TOKEN}) as ak:
            with pytest.raises(InvalidStatus) as info:
                async with connect(ak.ws_url + path, additional_headers=headers):
                    pass
            return info.value, ak.log

    exc, log = asyncio.run(main())
    assert exc.response.status_code == 403
    assert bytes(exc.response.body) == b""
    rejects = [e for e in log if e["event"] == "reject"]
    assert [e["detail"] for e in rejects] == [reason]
    assert TOKEN not in json.dumps(log)


@pytest.mark.parametrize(
    "frame",
    [
        "{not json",
        '{"args": {}}',
        "[1, 2, 3]",
        '{"instruction": "1", "args": {}}',
        b"\x01\x02",
        '{"instruction": 1, "args": [1]}',
    ],
)
def test_malformed_input_drops_the_connection_without_a_close_frame(frame: str | bytes) -> None:
    async def main() -> tuple[int | None, list[str]]:
        async with MockAuthentik(outposts={PK: TOKEN}) as ak, outpost(ak) as ws:
            await ws.send(frame)
            with pytest.raises(ConnectionClosedError):
                await ws.recv()
            return ws.close_code, [e["event"] for e in ak.log]

    code, events = asyncio.run(main())
    assert code == 1006
    assert "abort" in events and "send" not in events


def test_trigger_update_reaches_sockets_that_never_sent_hello() -> None:
    async def main() -> tuple[int, list[str], int]:
        async with MockAuthentik(outposts={PK: TOKEN, "other": "t2"}) as ak:
            async with outpost(ak) as a, outpost(ak, query="?instance_uuid=u2&attempt=1") as b:
                async with connect(ak.ws_url + "/ws/outpost/other/", additional_headers={"Authorization": "Bearer t2"}):
                    n = await ak.push_trigger_update(PK)
                    got = [await a.recv(), await b.recv()]
                    ends = await ak.push_session_end("abc")
                    return n, got, ends

    n, got, ends = asyncio.run(main())
    assert n == 2
    assert got == ['{"instruction": 2, "args": {}}'] * 2
    assert ends == 3


def test_restart_closes_every_socket_with_1012() -> None:
    async def main() -> tuple[int, int | None, int | None, str]:
        async with MockAuthentik(outposts={PK: TOKEN}) as ak:
            async with outpost(ak) as ws, connect(ak.ws_url + "/ws/client/") as browser:
                closed = await ak.restart()
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                with pytest.raises(ConnectionClosed):
                    await browser.recv()
            async with outpost(ak) as again:  # accepted again after the restart
                await again.send(HELLO)
                ack = await again.recv()
            return closed, ws.close_code, browser.close_code, ack

    closed, code, browser_code, ack = asyncio.run(main())
    assert closed == 2
    assert code == browser_code == 1012
    assert ack == ACK_FRAME


def test_client_pushes_each_frame_type() -> None:
    async def main() -> list[dict[str, Any]]:
        async with MockAuthentik() as ak, connect(ak.ws_url + "/ws/client/") as browser:
            assert await ak.push_notice("saved", level="success") == 1
            assert await ak.push_session_authenticated() == 1
            assert await ak.push_notification("n1", {"body": "hi"}) == 1
            return [json.loads(await browser.recv()) for _ in range(3)]

    frames = asyncio.run(main())
    assert frames[0] == {
        "type": "event.update",
        "message_type": "message",
        "level": "success",
        "tags": "success",
        "message": "saved",
    }
    assert frames[1]["message_type"] == "session.authenticated"
    assert frames[2] == {"message_type": "notification.new", "id": "n1", "data": {"body": "hi"}}


def test_ack_latency_model_and_stall_delay_acks_in_order() -> None:
    async def main() -> tuple[list[float], list[str], bool]:
        ak = MockAuthentik(outposts={PK: TOKEN}, ack_latency=LatencyModel.fixed(0.05))
        async with ak, outpost(ak) as ws:
            for _ in range(3):
                await ws.send(HELLO)
            acks = [await ws.recv() for _ in range(3)]
            ak.stall(0.2)
            stalled = ak.stalled
            await ws.send(HELLO)
            acks.append(await ws.recv())
            lat = [e["latency_s"] for e in ak.log if e["event"] == "send"]
            return lat, acks, stalled

    lat, acks, stalled = asyncio.run(main())
    assert acks == [ACK_FRAME] * 4
    assert stalled
    assert all(x >= 0.05 for x in lat[:3])
    assert lat[3] >= 0.2


def test_stall_with_drop_never_answers_and_the_socket_stays_open() -> None:
    async def main() -> tuple[bool, str]:
        async with MockAuthentik(outposts={PK: TOKEN}) as ak, outpost(ak) as ws:
            ak.stall(0.15, drop=True)
            await ws.send(HELLO)
            silent = await no_frame(ws, 0.3)
            await ws.send(HELLO)
            return silent, await ws.recv()

    silent, ack = asyncio.run(main())
    assert silent
    assert ack == ACK_FRAME


def test_sessions_gate_the_client_endpoint() -> None:
    async def main() -> tuple[int, int, int]:
        async with MockAuthentik(sessions={"good"}) as ak:
            async with connect(ak.ws_url + "/ws/client/", additional_headers={"Cookie": "authentik_session=good"}):
                ok = await ak.push_notice("x")
            statuses = []
            for headers in ({"Cookie": "authentik_session=bad"}, {}):
                with pytest.raises(InvalidStatus) as info:
                    async with connect(ak.ws_url + "/ws/client/", additional_headers=headers):
                        pass
                statuses.append(info.value.response.status_code)
            return ok, statuses[0], statuses[1]

    assert asyncio.run(main()) == (1, 403, 403)


def test_log_never_holds_credentials() -> None:
    async def main() -> list[dict[str, Any]]:
        async with MockAuthentik(outposts={PK: TOKEN}, sessions={"sess-secret"}) as ak:
            async with outpost(ak) as ws:
                await ws.send(HELLO)
                await ws.recv()
            async with connect(
                ak.ws_url + "/ws/client/", additional_headers={"Cookie": "authentik_session=sess-secret"}
            ):
                pass
            return ak.log

    text = json.dumps(asyncio.run(main()))
    assert TOKEN not in text and "sess-secret" not in text


def test_health_lists_instances_from_their_hello() -> None:
    async def main() -> list[Any]:
        async with MockAuthentik(outposts={PK: TOKEN}, version="2023.10.0") as ak, outpost(ak) as ws:
            await ws.send(encode_hello(hello_args(uuid="i-1", version="2023.8.0", hostname="old")))
            await ws.recv()
            return ak.health(PK)

    (state,) = asyncio.run(main())
    assert (state.uid, state.version, state.hostname) == ("i-1", "2023.8.0", "old")


def test_usage_errors_are_one_line_configuration_errors() -> None:
    ak = MockAuthentik()
    with pytest.raises(ConfigurationError, match="not started"):
        _ = ak.url
    with pytest.raises(ConfigurationError):
        MockAuthentik(outposts={PK: ""})

    async def main() -> None:
        async with MockAuthentik() as ak:
            with pytest.raises(ConfigurationError, match="unknown outpost"):
                await ak.push_trigger_update("nope")

    asyncio.run(main())
    assert decode(ACK_FRAME, endpoint="outpost")["instruction"] == 0


def test_restart_refuses_connections_during_the_downtime() -> None:
    async def main() -> tuple[int, bool, str, list[str]]:
        async with MockAuthentik(outposts={PK: TOKEN}) as ak:
            async with outpost(ak) as ws:
                restart = asyncio.create_task(ak.restart(downtime=1.0))
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
            refused = False
            try:
                async with outpost(ak):
                    pass
            except OSError:
                refused = True
            closed = await restart
            async with outpost(ak) as again:  # same port after the downtime
                await again.send(HELLO)
                ack = await again.recv()
            return closed, refused, ack, [e["detail"] for e in ak.log if e["event"] == "restart"]

    closed, refused, ack, details = asyncio.run(main())
    assert closed == 1 and refused
    assert ack == ACK_FRAME
    assert details == ["begin", "done (1 closed)"]


@pytest.mark.parametrize("frame", ["{not json", b"\x00"])
def test_client_endpoint_ignores_json_and_drops_malformed_frames(frame: str | bytes) -> None:
    async def main() -> tuple[int | None, int]:
        async with MockAuthentik() as ak, connect(ak.ws_url + "/ws/client/") as browser:
            await browser.send('{"hello": "from-client"}')
            await browser.send(frame)
            with pytest.raises(ConnectionClosedError):
                await browser.recv()
            return browser.close_code, sum(e["event"] == "send" for e in ak.log)

    assert asyncio.run(main()) == (1006, 0)
