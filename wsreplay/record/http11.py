"""Just enough HTTP/1.1 for a transparent relay: heads in, bodies copied as they stream.

Header lines are kept as received (case and order), so what reaches the
upstream is what the peer sent, apart from the few headers a proxy must touch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote

from ..exceptions import RelayHTTPError as HeadError

__all__ = [
    "MAX_HEAD",
    "RequestHead",
    "ResponseHead",
    "HeadError",
    "read_request",
    "read_response",
    "copy_body",
    "request_body_kind",
    "response_body_kind",
    "redact_query",
    "simple_response",
]

#: Largest request or response head accepted (bytes).
MAX_HEAD = 64 * 1024
_SECRET_WORDS = ("token", "secret", "password", "passwd", "key", "auth", "session", "cookie", "signature", "sig")
_REDACTED = "REDACTED"


@dataclass
class _Head:
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        """Value of the first header called *name* (case-insensitive)."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def tokens(self, name: str) -> set[str]:
        """Comma-separated tokens of every *name* header, lower-cased."""
        name = name.lower()
        out: set[str] = set()
        for key, value in self.headers:
            if key.lower() == name:
                out.update(t.strip().lower() for t in value.split(",") if t.strip())
        return out


@dataclass
class RequestHead(_Head):
    """A parsed request line and its headers."""

    method: str = "GET"
    target: str = "/"
    version: str = "HTTP/1.1"

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    @property
    def is_upgrade(self) -> bool:
        return "websocket" in self.tokens("upgrade") and "upgrade" in self.tokens("connection")

    def encode(self, headers: list[tuple[str, str]] | None = None, target: str | None = None) -> bytes:
        lines = [f"{self.method} {target or self.target} {self.version}"]
        lines += [f"{k}: {v}" for k, v in (self.headers if headers is None else headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class ResponseHead(_Head):
    """A parsed status line and its headers, plus the raw bytes as received."""

    version: str = "HTTP/1.1"
    status: int = 0
    reason: str = ""
    raw: bytes = b""


def _split_head(raw: bytes) -> tuple[str, list[tuple[str, str]]]:
    try:
        text = raw.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes anything
        raise HeadError("undecodable head") from exc
    lines = text.split("\r\n")
    start = lines[0]
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            raise HeadError("obsolete header line folding")
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HeadError("malformed header line")
        headers.append((name, value.strip()))
    return start, headers


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise HeadError("connection closed in the middle of a head") from exc
    except asyncio.LimitOverrunError as exc:
        raise HeadError("head too large") from exc
    if len(raw) > MAX_HEAD:
        raise HeadError("head too large")
    return raw


async def read_request(reader: asyncio.StreamReader) -> RequestHead | None:
    """Read one request head; ``None`` on a clean end of the connection."""
    raw = await _read_head(reader)
    if raw is None:
        return None
    start, headers = _split_head(raw.lstrip(b"\r\n")[:-4])
    parts = start.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1]:
        raise HeadError("malformed request line")
    return RequestHead(headers=headers, method=parts[0], target=parts[1], version=parts[2])


async def read_response(reader: asyncio.StreamReader) -> ResponseHead:
    """Read one response head (raises :class:`HeadError` on EOF or garbage)."""
    raw = await _read_head(reader)
    if raw is None:
        raise HeadError("upstream closed the connection without a response")
    start, headers = _split_head(raw[:-4])
    parts = start.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HeadError("malformed status line")
    return ResponseHead(
        headers=headers, version=parts[0], status=int(parts[1]), reason=parts[2] if len(parts) > 2 else "", raw=raw
    )


def request_body_kind(head: RequestHead) -> tuple[str, int]:
    """How a request body is framed: ``("none", 0)``, ``("length", n)`` or ``("chunked", 0)``."""
    if "chunked" in head.tokens("transfer-encoding"):
        return "chunked", 0
    length = head.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HeadError("bad Content-Length")
        return ("length", int(length)) if int(length) else ("none", 0)
    return "none", 0


def response_body_kind(head: ResponseHead, method: str) -> tuple[str, int]:
    """How a response body is framed; ``("eof", 0)``: until the upstream closes."""
    if method == "HEAD" or head.status < 200 or head.status in (204, 304):
        return "none", 0
    if "chunked" in head.tokens("transfer-encoding"):
        return "chunked", 0
    length = head.get("content-length")
    if length is not None and length.isdigit():
        return ("length", int(length)) if int(length) else ("none", 0)
    return "eof", 0


async def copy_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str, length: int) -> None:
    """Copy one body from *reader* to *writer* as it arrives, framing bytes included."""
    if kind == "none":
        return
    if kind == "length":
        left = length
        while left:
            chunk = await reader.read(min(left, 65536))
            if not chunk:
                raise HeadError("body cut short")
            writer.write(chunk)
            left -= len(chunk)
            await writer.drain()
        return
    if kind == "eof":
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        return
    # chunked: size line, data, CRLF ... then a zero chunk and optional trailers
    while True:
        line = await reader.readuntil(b"\r\n")
        writer.write(line)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise HeadError("bad chunk size") from exc
        if size == 0:
            while True:
                trailer = await reader.readuntil(b"\r\n")
                writer.write(trailer)
                if trailer == b"\r\n":
                    break
            await writer.drain()
            return
        left = size + 2
        while left:
            chunk = await reader.read(min(left, 65536))
            if not chunk:
                raise HeadError("chunked body cut short")
            writer.write(chunk)
            left -= len(chunk)
        await writer.drain()


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
    """A small response the recorder makes itself (e.g. 502 when the upstream is down)."""
    data = body.encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {quote(reason, safe=' ')}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + data
