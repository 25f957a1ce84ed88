"""Replay the real authentik 2023.10 traffic fixture against the mock; it must answer as the real server did.

Every connection of the fixture's ``a*`` (outpost endpoint) and ``b*`` (client
endpoint) scenarios is replayed in order: the same handshake (tokens
substituted, the scheme kept), the same client frames, and the server-side
events (configuration saves, logouts, notices) as pushes. The mock must refuse
exactly the handshakes the real server refused (403, empty body), send
byte-for-byte the frames it sent, answer nothing where it answered nothing,
drop the connection without a close frame where it did, and list the same
instances in the health route.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from tests_support import real_frames
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from wsreplay.protocol import Instruction, decode
from wsreplay.sim import MockAuthentik

PK = "1ee03a64-69e4-4f1e-9f06-35cc8e6de56a"
TOKEN = "outpost-api-token"
ADMIN = "admin-api-token"
#: Scenarios whose redacted ``Bearer`` token was not the outpost's own.
BEARER_TOKENS = {"a2": "not-the-token", "a12": ADMIN}


def _prefix(scenario: str) -> str:
    return scenario.split("-", 1)[0]


def connections() -> list[tuple[str, list[dict[str, Any]]]]:
    """The fixture's WebSocket connections, in order: (scenario prefix, its records)."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    current: dict[str, list[dict[str, Any]]] = {}
    for rec in real_frames():
        scenario = rec["scenario"]
        if scenario == "trigger" or scenario[:1] not in ("a", "b"):
            continue
        key = _prefix(scenario)
        if rec["kind"] == "handshake_request":
            current[key] = [rec]
            out.append((key, current[key]))
        elif key in current:
            current[key].append(rec)
    return out


def _headers(key: str, request: dict[str, Any]) -> dict[str, str]:
    headers = dict(request["headers"])
    auth = headers.get("Authorization")
    if auth is not None:
        scheme, _, _ = auth.partition(" ")
        if scheme == "Bearer":
            headers["Authorization"] = f"Bearer {BEARER_TOKENS.get(key, TOKEN)}"
        elif scheme == "Basic":
            headers["Authorization"] = f"Basic {TOKEN}"
        else:  # the token without a scheme
            headers["Authorization"] = f"{TOKEN} {TOKEN}"
    if "Cookie" in headers:
        headers["Cookie"] = headers["Cookie"].replace("<redacted>", "a-session-key")
    return headers


def _health(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        value: list[dict[str, Any]] = json.loads(response.read())
        return value


class Replay:
    """Plays one connection's records and collects what differed."""

    def __init__(self, ak: MockAuthentik) -> None:
        self.ak = ak
        self.diffs: list[str] = []
        self.checked = 0

    def expect(self, ok: bool, what: str) -> None:
        self.checked += 1
        if not ok:
            self.diffs.append(what)

    async def play(self, key: str, records: list[dict[str, Any]]) -> None:
        request, outcome, rest = records[0], records[1], records[2:]
        url = self.ak.ws_url + request["path"]
        headers = _headers(key, request)
        if outcome["kind"] == "handshake_rejected":
            try:
                async with connect(url, additional_headers=headers):
                    self.expect(False, f"{key}: accepted, real server refused with {outcome['status']}")
            except InvalidStatus as exc:
                response = exc.response
                self.expect(response.status_code == outcome["status"], f"{key}: status {response.status_code}")
                self.expect(bytes(response.body) == b"", f"{key}: refusal has a body")
                self.expect(response.headers.get("Content-Length") == "0", f"{key}: refusal Content-Length")
            return
        assert outcome["kind"] == "handshake_accepted"
        try:
            ws = await connect(url, additional_headers=headers)
        except InvalidStatus as exc:
            self.expect(False, f"{key}: refused with {exc.response.status_code}, real server accepted")
            return
        async with ws:
            assert ws.response is not None
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
            self.expect(
                extensions.startswith("permessage-deflate"), f"{key}: compression not negotiated ({extensions!r})"
            )
            await self.frames(key, ws, rest)

    async def frames(self, key: str, ws: ClientConnection, records: list[dict[str, Any]]) -> None:
        endpoint = "outpost" if "/ws/outpost/" in records[0]["endpoint"] else "client"
        sends_before = self._sends()
        answered = 0  # client frames the real server answered
        for rec in records:
            direction, kind = rec["direction"], rec["kind"]
            if kind == "http_json":
                await self.health(key, rec)
            elif direction == "client->server" and kind in ("text", "binary"):
                payload = bytes.fromhex(rec["data_hex"]) if kind == "binary" else rec["data"]
                await ws.send(payload)
            elif direction == "server->client" and kind == "text":
                await self.server_frame(key, ws, endpoint, rec)
                answered += decode(rec["data"], endpoint=endpoint).get("instruction") == Instruction.ACK
            elif kind == "close" and direction == "server->client":
                try:
                    got = await ws.recv()
                    self.expect(False, f"{key}: got {got!r}, real server dropped the connection")
                except ConnectionClosedError:
                    self.expect(ws.close_code == rec["ws_close_code"] == 1006, f"{key}: close code {ws.close_code}")
                    self.expect(ws.protocol.close_rcvd is None, f"{key}: the mock sent a close frame")
                return
            elif kind == "close":  # the client closes; the server answers the close frame
                await ws.close(rec["close_code"])
                rcvd = ws.protocol.close_rcvd
                self.expect(rcvd is not None and rcvd.code == rec["server_close_code"], f"{key}: close answer {rcvd}")
                break
        # no unanswered reply: the mock sent exactly the ACKs the real server sent on this connection
        acks = sum(1 for e in self.ak.log[sends_before:] if e["event"] == "send" and e["instruction"] == 0)
        self.expect(acks == answered, f"{key}: {acks} ACKs sent, real server sent {answered}")

    def _sends(self) -> int:
        return len(self.ak.log)

    async def server_frame(self, key: str, ws: ClientConnection, endpoint: str, rec: dict[str, Any]) -> None:
        real = rec["data"]
        if endpoint == "outpost":
            instruction = decode(real, endpoint="outpost").get("instruction")
            if instruction == Instruction.TRIGGER_UPDATE:
                self.expect(await self.ak.push_trigger_update(PK) >= 1, f"{key}: trigger reached no socket")
            elif instruction == Instruction.PROVIDER_SPECIFIC:
                args = {k: v for k, v in json.loads(real)["args"].items() if k != "type"}
                await self.ak.push_provider_specific(PK, args)
        else:
            notice = json.loads(real)
            await self.ak.push_notice(notice["message"], level=notice["level"], tags=notice["tags"])
        got = await asyncio.wait_for(ws.recv(), 10)
        self.expect(got == real, f"{key}: sent {got!r}, real server sent {real!r}")

    async def health(self, key: str, rec: dict[str, Any]) -> None:
        real = json.loads(rec["data"])
        mine = await asyncio.to_thread(_health, f"{self.ak.url}/api/v3/outposts/instances/{PK}/health/")
        by_uid = {row["uid"]: row for row in mine}
        for row in real:
            got = by_uid.get(row["uid"])
            self.expect(got is not None, f"{key}: instance {row['uid']} missing from health")
            if got is not None:
                self.expect(set(got) == set(row), f"{key}: health keys {sorted(got)} != {sorted(row)}")
                same = {k: got[k] == v for k, v in row.items() if k != "last_seen"}
                self.expect(all(same.values()), f"{key}: health row differs: {got} vs {row}")


def _run() -> tuple[list[str], int, list[str]]:
    async def main() -> tuple[list[str], int, list[str]]:
        async with MockAuthentik(outposts={PK: TOKEN}, admin_tokens=[ADMIN], version="2023.10.0") as ak:
            replay = Replay(ak)
            played = []
            for key, records in connections():
                await replay.play(key, records)
                played.append(key)
            return replay.diffs, replay.checked, played

    return asyncio.run(main())


@pytest.fixture(scope="module")
def replayed() -> Iterator[tuple[list[str], int, list[str]]]:
    yield _run()


def test_the_fixture_is_what_this_test_expects() -> None:
    keys = [k for k, _ in connections()]
    assert {f"a{i}" for i in range(1, 14)} <= set(keys)
    assert {"a4b", "a8b", "a8c", "a6b", "b1", "b2", "b3"} <= set(keys)


def test_mock_answers_the_real_traffic_as_authentik_did(replayed: tuple[list[str], int, list[str]]) -> None:
    diffs, checked, played = replayed
    assert diffs == []
    assert checked > 60
    assert played.count("a10") == 3
