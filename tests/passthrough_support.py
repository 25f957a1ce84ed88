"""Real upstreams for the pass-through tests (import as ``from passthrough_support import ...``).

* :func:`uvicorn_upstream`: uvicorn with ``--ws wsproto`` (how authentik serves), running
  :func:`asgi_app` in the test's own event loop, with a short keep-alive timeout.
* :class:`RawUpstream`: a raw-socket server that logs every byte it receives per connection
  and answers each request (read with h11) with a tiny ``200``; :func:`lenient_targets` reads
  such a log the way a lenient back end would, to tell whether a request was smuggled past the
  recorder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import h11

#: 1 MiB of non-repeating-looking bytes, the unit of the large bodies
PATTERN = bytes(i % 251 for i in range(1 << 20))


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """HTTP: ``/status/<n>`` answers *n* with no body; anything else echoes the request as JSON.

    WebSocket: sends ``{"host": ...}`` (the Host the upgrade carried), then echoes text messages;
    a close from the client is answered with 1000 (uvicorn does that itself).
    """
    if scope["type"] == "http":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if path.startswith("/status/"):
            await send({"type": "http.response.start", "status": int(path.rsplit("/", 1)[1]), "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if path == "/big":
            size = int(scope["query_string"] or b"0")
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"x/y")]})
            for start in range(0, size, len(PATTERN)):
                chunk = PATTERN[: min(len(PATTERN), size - start)]
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        echo = {
            "method": scope["method"],
            "path": path,
            "http_version": scope["http_version"],
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "body_len": len(body),
            "body_sum": sum(body) % 65521,
        }
        data = json.dumps(echo).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data})
        return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        await send({"type": "websocket.send", "text": json.dumps({"host": host})})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
        return
    if scope["type"] == "lifespan":  # pragma: no cover - started with lifespan="off"
        return


@contextlib.asynccontextmanager
async def uvicorn_upstream(*, keep_alive: float = 5.0) -> AsyncIterator[int]:
    """uvicorn (h11 for HTTP, wsproto for WebSocket) on 127.0.0.1; yields its port."""
    import uvicorn

    config = uvicorn.Config(
        asgi_app,
        host="127.0.0.1",
        port=0,
        ws="wsproto",
        http="h11",
        lifespan="off",
        log_level="warning",
        timeout_keep_alive=int(keep_alive) if keep_alive >= 1 else keep_alive,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        await task


class RawUpstream:
    """Logs the bytes of every connection; answers each request h11 can read with ``200 ok``."""

    def __init__(self) -> None:
        self.logs: list[bytearray] = []
        #: per connection, how many requests arrived whole (and were answered)
        self.completed: list[int] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def received(self) -> bytes:
        return b"".join(bytes(log) for log in self.logs)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        log = bytearray()
        self.logs.append(log)
        index = len(self.completed)
        self.completed.append(0)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    log += data
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.EndOfMessage):
                    self.completed[index] += 1
                    writer.write(conn.send(h11.Response(status_code=200, headers=[("Content-Length", "2")])) or b"")
                    writer.write(conn.send(h11.Data(data=b"ok")) or b"")
                    writer.write(conn.send(h11.EndOfMessage()) or b"")
                    await writer.drain()
                    if conn.our_state is h11.MUST_CLOSE:
                        break
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    break
        except (h11.RemoteProtocolError, ConnectionError):
            # keep logging what arrives: a lenient back end would go on reading
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    log += data
        finally:
            writer.close()


_LINE = re.compile(rb"^([A-Z]+) (\S+) HTTP/1\.[01]$")


def lenient_targets(stream: bytes, *, prefer: str) -> list[str]:
    """Request targets in *stream* as a lenient back end reads them.

    *prefer* is ``"cl"`` (Content-Length wins over Transfer-Encoding, the first of several
    Content-Length values counts) or ``"te"`` (any Transfer-Encoding mentioning ``chunked``
    makes the body chunked; the last Content-Length counts). Line ends may be bare LF.
    """
    targets: list[str] = []
    pos = 0
    while pos < len(stream):
        end = stream.find(b"\n\r\n", pos)
        end2 = stream.find(b"\n\n", pos)
        ends = [(e, n) for e, n in ((end, 3), (end2, 2)) if e >= 0]
        if not ends:
            break
        head_end, skip = min(ends)
        lines = [ln.rstrip(b"\r") for ln in stream[pos:head_end].split(b"\n")]
        pos = head_end + skip
        while lines and not lines[0]:
            lines.pop(0)
        if not lines:
            continue
        match = _LINE.match(lines[0].strip())
        if match:
            targets.append(match.group(2).decode("latin-1"))
        lengths: list[int] = []
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                with contextlib.suppress(ValueError):
                    lengths.append(int(value.strip().split(b",")[0]))
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if prefer == "cl" and lengths:
            pos += max(lengths[0], 0)
        elif chunked:
            while pos < len(stream):
                nl = stream.find(b"\n", pos)
                if nl < 0:
                    return targets
                try:
                    size = int(stream[pos:nl].split(b";")[0].strip(), 16)
                except ValueError:
                    return targets
                pos = nl + 1
                if size <= 0:
                    nl = stream.find(b"\n", pos)  # the empty line after the last chunk (no trailers)
                    pos = len(stream) if nl < 0 else nl + 1
                    break
                pos += size
                if stream[pos : pos + 2] == b"\r\n":
                    pos += 2
                elif stream[pos : pos + 1] == b"\n":
                    pos += 1
        elif lengths:
            pos += max(lengths[-1], 0)
    return targets
