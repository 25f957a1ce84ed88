"""Helpers of the replay tests (import as ``from replay_support import ...``): a literal capture and
a tiny authentik stand-in on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import pandas as pd
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from wsreplay.events import ConnectionLog
from wsreplay.protocol import decode, encode_ack, encode_hello, encode_notice, encode_trigger_update, hello_args
from wsreplay.schema import rows_to_table, table_to_frames

MS = 1_000_000
PK = "1ee03a64-69e4-4f1e-9f06-35cc8e6de56a"
TOKEN = "test-token"
HELLO = encode_hello(hello_args(uuid="inst-1", version="2023.10.0"))


def literal_capture(t0: int) -> pd.DataFrame:
    """Three recorded connections.

    ``conn-a`` (outpost): HELLO/ACK twice, a TRIGGER_UPDATE push, closed by the outpost (1000).
    ``conn-b`` (outpost): HELLO/ACK, then a frame that is not JSON, which the server answered by
    dropping the connection (1006). ``conn-c`` (client): one notice, closed by the browser.
    """
    rows = []
    a = ConnectionLog("cap", f"/ws/outpost/{PK}/", "instance_uuid=inst-1&attempt=0", conn_id="conn-a")
    rows += [
        a.open(t0, status=101, user_agent="goauthentik.io/outpost/2023.10.0"),
        a.message(t0 + 10 * MS, "to_server", HELLO),
        a.message(t0 + 13 * MS, "to_peer", encode_ack()),
        a.message(t0 + 100 * MS, "to_server", HELLO),
        a.message(t0 + 103 * MS, "to_peer", encode_ack()),
        a.message(t0 + 150 * MS, "to_peer", encode_trigger_update()),
        a.close(t0 + 200 * MS, "to_server", code=1000),
    ]
    b = ConnectionLog("cap", f"/ws/outpost/{PK}/", "instance_uuid=inst-2&attempt=0", conn_id="conn-b")
    rows += [
        b.open(t0 + 50 * MS, status=101),
        b.message(t0 + 60 * MS, "to_server", HELLO),
        b.message(t0 + 62 * MS, "to_peer", encode_ack()),
        b.message(t0 + 80 * MS, "to_server", "this is not json"),
        b.close(t0 + 81 * MS, "to_peer", code=1006),
    ]
    c = ConnectionLog("cap", "/ws/client/", conn_id="conn-c")
    rows += [
        c.open(t0 + 20 * MS, status=101),
        c.message(t0 + 70 * MS, "to_peer", encode_notice("hello")),
        c.close(t0 + 120 * MS, "to_server", code=1000),
    ]
    return table_to_frames(rows_to_table(rows))


class MiniAuthentik:
    """A tiny authentik stand-in on 127.0.0.1.

    Checks the bearer token of outposts (403 before the upgrade), answers every non-ACK outpost frame
    with *answer* (authentik's ACK by default), drops the connection without a close frame on a
    malformed frame (unless ``drop_malformed=False``), and, with ``go_away_after=N``, shuts down (stops
    listening, closes every connection with 1001) once it has received N frames.
    """

    def __init__(
        self,
        *,
        token: str | None = TOKEN,
        answer: Callable[[str], str | None] | str | None = None,
        drop_malformed: bool = True,
        go_away_after: int | None = None,
        reply_delay: float = 0.0,
    ) -> None:
        self.token = token
        self.answer = encode_ack() if answer is None else answer
        self.drop_malformed = drop_malformed
        self.go_away_after = go_away_after
        self.reply_delay = reply_delay
        self.received: list[tuple[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._server: Any = None
        self._conns: set[ServerConnection] = set()

    @property
    def url(self) -> str:
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def _process_request(self, connection, request):
        self.headers.append(dict(request.headers.raw_items()))
        if request.path.startswith("/ws/outpost/") and self.token is not None:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return connection.respond(HTTPStatus.FORBIDDEN, "")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        self._conns.add(ws)
        endpoint = "outpost" if ws.request.path.startswith("/ws/outpost/") else "client"
        try:
            async for message in ws:
                self.received.append((ws.request.path, message))
                if self.go_away_after is not None and len(self.received) >= self.go_away_after:
                    # shut down mid-replay: stop listening, close every connection (1001)
                    self._server.close()
                    return
                opcode = "text" if isinstance(message, str) else "binary"
                decoded = decode(message, endpoint=endpoint, opcode=opcode)
                if decoded.get("parse_error") and decoded.get("instruction") is None:
                    if self.drop_malformed:
                        ws.transport.abort()
                        return
                    continue
                if decoded.get("instruction_name") == "ACK":
                    continue
                reply = self.answer(message) if callable(self.answer) else self.answer
                if reply is not None:
                    if self.reply_delay:
                        await asyncio.sleep(self.reply_delay)
                    await ws.send(reply)
        except ConnectionClosed:
            pass
        finally:
            self._conns.discard(ws)

    async def __aenter__(self) -> MiniAuthentik:
        self._server = await serve(self._handler, "127.0.0.1", 0, process_request=self._process_request)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()
