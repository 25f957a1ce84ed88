"""MockHandle: the mock on its own loop and thread, blocking methods, usable inside a running loop."""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from wsreplay.exceptions import ConfigurationError
from wsreplay.protocol import ACK_FRAME, encode_hello, outpost_path
from wsreplay.sim import LatencyModel, MockAuthentik, MockHandle

PK = "pk-1"
TOKEN = "tok"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_blocking_pushes_restart_and_stop() -> None:
    with MockAuthentik(outposts={PK: TOKEN}).start_in_thread() as ak:
        assert isinstance(ak, MockHandle) and ak.running
        with (
            connect(ak.ws_url + outpost_path(PK), additional_headers=AUTH) as ws,
            connect(ak.ws_url + "/ws/client/") as browser,
        ):
            assert ak.push_trigger_update(PK) == 1
            assert ws.recv(timeout=10) == '{"instruction": 2, "args": {}}'
            assert ak.push_provider_specific(PK, {"sub_type": "logout", "session_id": "s"}) == 1
            assert str(ws.recv(timeout=10)).startswith('{"instruction": 3, "args": {"type": "event.provider.specific"')
            assert ak.push_session_end("s") == 1
            assert ws.recv(timeout=10) == (
                '{"instruction": 4, "args": {"type": "event.session.end", "session_id": "s"}}'
            )
            assert ak.push_notice("hi", "warning") == 1
            assert '"level": "warning"' in browser.recv(timeout=10)
            assert ak.push_session_authenticated() == 1
            assert ak.push_notification("n", {}) == 1
            assert ak.restart() == 2
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
            assert ws.close_code == 1012
    events = [e["event"] for e in ak.log]
    assert not ak.running
    assert events[0] == "start" and events[-1] == "stop"
    ak.stop()  # idempotent


def test_ack_latency_and_stall_are_settable_through_the_handle() -> None:
    with MockAuthentik(outposts={PK: TOKEN}).start_in_thread() as ak:
        ak.ack_latency = 0.02
        assert ak.ack_latency.sample() == 0.02
        ak.ack_latency = LatencyModel.fixed(0.0)
        ak.stall(30)
        assert ak.stalled
        ak.stall(0)
        assert not ak.stalled
        with connect(ak.ws_url + outpost_path(PK), additional_headers=AUTH) as ws:
            ws.send(encode_hello({"uuid": "i", "version": "2023.10.0"}))
            assert ws.recv(timeout=10) == ACK_FRAME
        assert [s.uid for s in ak.health(PK)] == ["i"]


def test_works_inside_a_running_event_loop() -> None:
    async def notebook_cell() -> tuple[int, str]:
        # a notebook's loop is running: the handle runs the mock on its own thread and loop
        with MockAuthentik(outposts={PK: TOKEN}).start_in_thread() as ak:
            with connect(ak.ws_url + outpost_path(PK), additional_headers=AUTH) as ws:
                ws.send(encode_hello())
                assert ws.recv(timeout=10) == ACK_FRAME
                return ak.push_trigger_update(PK), str(ws.recv(timeout=10))

    reached, pushed = asyncio.run(notebook_cell())
    assert reached == 1
    assert pushed == '{"instruction": 2, "args": {}}'


def test_a_port_in_use_is_a_configuration_error_from_start_in_thread() -> None:
    with MockAuthentik().start_in_thread() as first:
        with pytest.raises(ConfigurationError, match="cannot listen"):
            MockAuthentik(port=first.port).start_in_thread()
    with pytest.raises(ConfigurationError, match="not running"):
        first.push_notice("late")
