"""Strict HTTP/1.1 for a transparent relay: requests read by h11, plus the checks h11 leaves out.

h11 reads the grammar (request line, header names and values, chunk sizes,
body framing) and keeps header case and order. Before h11 sees a request head,
:func:`check_head` refuses what h11 would accept but another parser might read
differently: bare LF line ends, obsolete line folding, duplicate or listed
``Content-Length``, ``Content-Length`` together with ``Transfer-Encoding``, and
any ``Transfer-Encoding`` other than a single ``chunked``. A request the
recorder forwards is written anew from what h11 read (bodies re-framed), so the
upstream frames it exactly as the recorder did.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, quote

import h11

from ..exceptions import RelayHTTPError as HeadError

__all__ = [
    "MAX_HEAD",
    "HeadError",
    "PeerHTTP",
    "check_head",
    "head_end",
    "header",
    "tokens",
    "is_upgrade",
    "split_target",
    "redacted_head",
    "redact_query",
    "simple_response",
]

#: Largest request or response head accepted (bytes).
MAX_HEAD = 64 * 1024
_READ = 65536
_SECRET_WORDS = ("token", "secret", "password", "passwd", "key", "auth", "session", "cookie", "signature", "sig")
_REDACTED = "REDACTED"


def head_end(buf: bytes) -> int:
    """Length of the head at the start of *buf* (through its empty line), or -1 if incomplete.

    Examples
    --------
    >>> head_end(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\nbody")
    27
    >>> head_end(b"GET / HTTP/1.1\\nHost: a\\n\\n")  # bare LF: still a head, refused by check_head
    24
    """
    ends = [i + n for i, n in ((buf.find(b"\n\r\n"), 3), (buf.find(b"\n\n"), 2)) if i >= 0]
    return min(ends) if ends else -1


def check_head(raw: bytes) -> None:
    """Refuse a request head that parsers may read differently (raises :class:`HeadError`).

    Examples
    --------
    >>> check_head(b"POST / HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 1\\r\\nContent-Length: 1\\r\\n\\r\\n")
    Traceback (most recent call last):
    ...
    wsreplay.exceptions.RelayHTTPError: duplicate Content-Length
    """
    if raw.count(b"\n") != raw.count(b"\r\n"):
        raise HeadError("bare LF line end")
    if raw.count(b"\r") != raw.count(b"\r\n"):
        raise HeadError("CR inside a line")
    if b"\x00" in raw:
        raise HeadError("NUL byte in the head")
    lengths: list[bytes] = []
    codings: list[bytes] = []
    for line in raw.split(b"\r\n")[1:]:
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            raise HeadError("obsolete line folding")
        name, sep, value = line.partition(b":")
        if not sep:
            raise HeadError("header line without a colon")
        if name != name.rstrip(b" \t"):
            raise HeadError("whitespace before the colon")
        lower = name.lower()
        if lower == b"content-length":
            lengths.append(value.strip(b" \t"))
        elif lower == b"transfer-encoding":
            codings += [c.strip(b" \t").lower() for c in value.split(b",")]
    if len(lengths) > 1:
        raise HeadError("duplicate Content-Length")
    if lengths and (b"," in lengths[0] or not lengths[0].isdigit()):
        raise HeadError("Content-Length is not one decimal number")
    if codings and lengths:
        raise HeadError("Content-Length together with Transfer-Encoding")
    if codings and codings != [b"chunked"]:
        raise HeadError("Transfer-Encoding other than a single chunked")


def header(event: h11.Request | h11.Response | h11.InformationalResponse, name: bytes) -> bytes | None:
    """The first *name* header (lower-case name) of an h11 event."""
    for key, value in event.headers:
        if key == name:
            return bytes(value)
    return None


def tokens(event: h11.Request | h11.Response | h11.InformationalResponse, name: bytes) -> set[bytes]:
    """Comma-separated tokens of every *name* header, lower-cased."""
    out: set[bytes] = set()
    for key, value in event.headers:
        if key == name:
            out.update(t.strip().lower() for t in bytes(value).split(b",") if t.strip())
    return out


def is_upgrade(request: h11.Request) -> bool:
    """Whether *request* asks for a WebSocket."""
    return b"websocket" in tokens(request, b"upgrade") and b"upgrade" in tokens(request, b"connection")


def split_target(target: bytes) -> tuple[str, str]:
    """``(path, query)`` of a request target.

    Examples
    --------
    >>> split_target(b"/ws/outpost/pk/?instance_uuid=i")
    ('/ws/outpost/pk/', 'instance_uuid=i')
    """
    path, _, query = target.decode("latin-1").partition("?")
    return path, query


def redacted_head(raw: bytes, limit: int = 8192) -> bytes:
    """A refused head as the capture keeps it: credential-like header values and query values hidden.

    Examples
    --------
    >>> redacted_head(b"GET /x?token=s HTTP/1.1\\r\\nCookie: s\\r\\nX: 1\\r\\n\\r\\n")
    b'GET /x?token=REDACTED HTTP/1.1\\r\\nCookie: REDACTED\\r\\nX: 1\\r\\n\\r\\n'
    """
    lines = raw[:limit].split(b"\n")
    first = lines[0].split(b" ")
    if len(first) >= 2 and b"?" in first[1]:
        path, _, query = first[1].partition(b"?")
        first[1] = path + b"?" + redact_query(query.decode("latin-1")).encode("latin-1")
    out = [b" ".join(first)]
    for line in lines[1:]:
        if any(word.encode() in line.lower() for word in _SECRET_WORDS):
            name = line.split(b":", 1)[0] if b":" in line else b""
            line = name + b": " + _REDACTED.encode() + (b"\r" if line.endswith(b"\r") else b"")
        out.append(line)
    return b"\n".join(out)


class PeerHTTP:
    """The peer's side of a connection: strict requests in (h11 plus :func:`check_head`), responses out.

    Parameters
    ----------
    reader : asyncio.StreamReader
        The peer's bytes.
    """

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        #: the head of the request being read (kept for the error row when it is refused)
        self.raw_head = b""

    @property
    def buffered(self) -> bytes:
        """Bytes received and not read yet (the next pipelined request, or what follows an upgrade)."""
        return bytes(self.conn.trailing_data[0])

    def feed(self, data: bytes) -> None:
        """Bytes read from the peer elsewhere (``b""``: it ended its side)."""
        self.conn.receive_data(data)

    async def _more(self) -> None:
        self.conn.receive_data(await self.reader.read(_READ))

    async def next_request(self) -> h11.Request | None:
        """The next request head (checked); ``None`` when the peer ended cleanly between requests."""
        while True:
            buf, closed = self.conn.trailing_data
            end = head_end(buf)
            if end >= 0:
                break
            if len(buf) > MAX_HEAD:
                self.raw_head = bytes(buf[:MAX_HEAD])
                raise HeadError("head too large")
            if closed:
                if bytes(buf).strip():
                    self.raw_head = bytes(buf)
                    raise HeadError("connection closed in the middle of a head")
                return None
            await self._more()
        self.raw_head = bytes(buf[:end])
        check_head(self.raw_head)
        event = self._next()
        if not isinstance(event, h11.Request):  # pragma: no cover - a complete head is a request or an error
            raise HeadError("no request line")
        return event

    def _next(self) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        try:
            return self.conn.next_event()  # type: ignore[no-any-return]
        except h11.RemoteProtocolError as exc:
            raise HeadError(str(exc)) from None

    async def body(self) -> AsyncIterator[h11.Data | h11.EndOfMessage]:
        """The current request's body as it arrives, then its end (with trailers)."""
        while True:
            event = self._next()
            if event is h11.NEED_DATA:
                await self._more()
                continue
            if isinstance(event, h11.Data | h11.EndOfMessage):
                yield event
                if isinstance(event, h11.EndOfMessage):
                    return
            else:  # pragma: no cover - h11 only yields body events here
                raise HeadError(f"unexpected {type(event).__name__} in a request body")

    def send(self, event: h11.Event) -> bytes:
        """The bytes of a response event to the peer (h11 adapts framing to the peer's version)."""
        return self.conn.send(event) or b""

    def keep_alive(self) -> bool:
        """After a whole exchange: start the next one if both sides allow it; return whether they do."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
            return True
        return False


def redact_query(query: str) -> str:
    """Hide the values of query parameters that look like credentials.

    Examples
    --------
    >>> redact_query("instance_uuid=abc&attempt=0&token=s3cret")
    'instance_uuid=abc&attempt=0&token=REDACTED'
    """
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(any(w in k.lower() for w in _SECRET_WORDS) for k, _ in pairs):
        return query
    out = []
    for part in query.split("&"):
        key = part.split("=", 1)[0]
        if any(w in key.lower() for w in _SECRET_WORDS):
            out.append(f"{key}={_REDACTED}")
        else:
            out.append(part)
    return "&".join(out)


def simple_response(status: int, reason: str, body: str = "") -> bytes:
    """A small response the recorder makes itself (400 for a refused request, 502 when the upstream is down)."""
    data = body.encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {quote(reason, safe=' ')}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + data
