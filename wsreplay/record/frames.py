"""Watching WebSocket frames go by, without I/O.

The recorder relays the bytes of a WebSocket connection unchanged and feeds a
copy of each direction to a :class:`FrameParser`. The parser says how many
bytes may be forwarded now (everything up to the end of the last frame whose
header it has checked), and returns the messages, close frames and problems it
saw. Holding back at most one incomplete frame header (2-14 bytes) is what
lets the recorder refuse an over-size frame before any of it is relayed, and
inject its own close frame between two frames.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from websockets.frames import apply_mask  # C speedup when available

__all__ = ["FrameEvent", "FrameParser", "close_frame", "OP_TEXT", "OP_BINARY", "OP_CLOSE"]

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
_DATA = {OP_TEXT: "text", OP_BINARY: "binary"}
_KNOWN = {OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG}


@dataclass(slots=True)
class FrameEvent:
    """Something the parser saw in one direction.

    ``kind`` is ``message`` (a whole, reassembled data message: ``opcode``,
    ``data``), ``close`` (``code``, ``reason``), ``oversize`` (a frame or
    message larger than the limit: ``size``; nothing of it was forwarded) or
    ``bad_frame`` (a framing problem, relayed anyway: ``reason``).
    ``compressed`` is set on a message whose first frame had RSV1 set.
    """

    kind: str
    opcode: str | None = None
    data: bytes = b""
    code: int | None = None
    reason: str | None = None
    size: int = 0
    compressed: bool = False


class FrameParser:
    """Incremental WebSocket frame parser for one direction of a connection.

    Parameters
    ----------
    max_size : int
        Largest frame or reassembled message accepted, in bytes.

    Examples
    --------
    >>> p = FrameParser(max_size=1024)
    >>> forward, events = p.feed(b"\\x81\\x02hi")
    >>> forward, events[0].data
    (b'\\x81\\x02hi', b'hi')
    """

    __slots__ = (
        "_buf",
        "_chunks",
        "_fin",
        "_in_frame",
        "_mask",
        "_msg_compressed",
        "_msg_op",
        "_msg_parts",
        "_msg_size",
        "_op",
        "_remaining",
        "clean",
        "max_size",
        "refused",
    )

    def __init__(self, *, max_size: int = 16 * 1024 * 1024) -> None:
        self.max_size = max_size
        self.refused = False
        self.clean = True  # on a frame boundary, nothing buffered, no message in progress, not refused
        self._buf = b""
        # current frame
        self._remaining = 0
        self._in_frame = False
        self._op = 0
        self._fin = True
        self._mask: bytes | None = None
        self._chunks: list[bytes] = []
        # current fragmented message
        self._msg_op: int | None = None
        self._msg_parts: list[bytes] = []
        self._msg_size = 0
        self._msg_compressed = False

    @property
    def at_boundary(self) -> bool:
        """Whether everything forwarded so far ends on a frame boundary."""
        return not self._in_frame

    def feed(self, data: bytes) -> tuple[bytes, list[FrameEvent]]:
        """Take bytes received in this direction.

        Returns
        -------
        (forward, events)
            The bytes to relay now (a prefix of what has been fed, in order)
            and the events completed by them.
        """
        events: list[FrameEvent] = []
        if self.refused:
            return b"", events
        buf = self._buf + data if self._buf else data
        n = len(buf)
        pos = 0
        while pos < n:
            if self._in_frame:
                take = min(self._remaining, n - pos)
                if take:
                    self._chunks.append(buf[pos : pos + take])
                    pos += take
                    self._remaining -= take
                if self._remaining == 0:
                    self._end_frame(events)
                continue
            header = self._parse_header(buf, pos, n, events)
            if header is None:
                break
            pos = header
            if self.refused:
                break
            if self._remaining == 0:
                self._end_frame(events)
        self._buf = buf[pos:] if not self.refused else b""
        # only feed() changes the state: whole_message() reads this one flag instead of four
        self.clean = not self._buf and not self._in_frame and self._msg_op is None and not self.refused
        forward = buf[:pos] if pos < n else buf
        return forward, events

    def whole_message(self, data: bytes) -> tuple[str, bytes, bool] | None:
        """The message of *data* when it is exactly one whole message: the common case, cheaply.

        When *data* is one complete, unfragmented text or binary frame within
        the size limit, arriving on a frame boundary with no message in
        progress, :meth:`feed` would forward all of it and return that one
        message; this returns ``(opcode, payload, compressed)`` of it (payload
        unmasked, as in the ``message`` event) and leaves the parser as
        :meth:`feed` would. Anything else returns ``None`` and changes
        nothing: call :meth:`feed`.

        Examples
        --------
        >>> FrameParser().whole_message(b"\\x81\\x02hi")
        ('text', b'hi', False)
        >>> FrameParser().whole_message(b"\\x01\\x02hi") is None  # not the final frame
        True
        """
        return whole_frame(data, self.max_size) if self.clean else None

    # ----------------------------------------------------------------- private

    def _parse_header(self, buf: bytes, pos: int, n: int, events: list[FrameEvent]) -> int | None:
        if n - pos < 2:
            return None
        b0, b1 = buf[pos], buf[pos + 1]
        length = b1 & 0x7F
        head = 2
        if length == 126:
            if n - pos < 4:
                return None
            (length,) = struct.unpack_from("!H", buf, pos + 2)
            head = 4
        elif length == 127:
            if n - pos < 10:
                return None
            (length,) = struct.unpack_from("!Q", buf, pos + 2)
            head = 10
        masked = bool(b1 & 0x80)
        if masked:
            if n - pos < head + 4:
                return None
            mask = buf[pos + head : pos + head + 4]
            head += 4
        else:
            mask = None
        op = b0 & 0x0F
        fin = bool(b0 & 0x80)
        rsv = b0 & 0x70
        if op in _DATA or op == OP_CONT:
            total = length + (self._msg_size if op == OP_CONT else 0)
            if length > self.max_size or total > self.max_size:
                self.refused = True
                events.append(FrameEvent("oversize", opcode=_DATA.get(op, "continuation"), size=max(length, total)))
                return pos
        elif length > self.max_size:
            self.refused = True
            events.append(FrameEvent("oversize", size=length))
            return pos
        if op not in _KNOWN:
            events.append(FrameEvent("bad_frame", reason=f"frame with reserved opcode {op:#x}"))
        elif op >= OP_CLOSE and (length > 125 or not fin):
            events.append(FrameEvent("bad_frame", reason=f"control frame {op:#x} fragmented or over 125 bytes"))
        if op in _DATA:
            if self._msg_op is not None:
                events.append(FrameEvent("bad_frame", reason="new data frame before the previous message ended"))
                self._reset_message()
            self._msg_op = op
            self._msg_compressed = bool(rsv & 0x40)
        elif op == OP_CONT and self._msg_op is None:
            events.append(FrameEvent("bad_frame", reason="continuation frame without a message to continue"))
        self._op = op
        self._fin = fin
        self._mask = mask
        self._remaining = length
        self._in_frame = True
        self._chunks = []
        return pos + head

    def _end_frame(self, events: list[FrameEvent]) -> None:
        self._in_frame = False
        chunks = self._chunks
        payload = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        if self._mask is not None and payload:
            payload = apply_mask(payload, self._mask)
        op = self._op
        if op in _DATA or op == OP_CONT:
            if self._msg_op is None:
                return
            self._msg_parts.append(payload)
            self._msg_size += len(payload)
            if self._fin:
                parts = self._msg_parts
                data = parts[0] if len(parts) == 1 else b"".join(parts)
                events.append(
                    FrameEvent(
                        "message",
                        opcode=_DATA[self._msg_op],
                        data=bytes(data),
                        size=len(data),
                        compressed=self._msg_compressed,
                    )
                )
                self._reset_message()
        elif op == OP_CLOSE:
            if len(payload) >= 2:
                code = int.from_bytes(payload[:2], "big")
                reason = bytes(payload[2:]).decode("utf-8", "replace")
            elif not payload:
                code, reason = 1005, ""
            else:
                code, reason = 1002, ""
                events.append(FrameEvent("bad_frame", reason="close frame with a 1-byte payload"))
            events.append(FrameEvent("close", code=code, reason=reason, data=bytes(payload), size=len(payload)))

    def _reset_message(self) -> None:
        self._msg_op = None
        self._msg_parts = []
        self._msg_size = 0
        self._msg_compressed = False


def close_frame(code: int, reason: str = "", *, mask: bool) -> bytes:
    """Encode a close frame (masked when sent towards a server, as RFC 6455 requires).

    Examples
    --------
    >>> close_frame(1001, "bye", mask=False)
    b'\\x88\\x05\\x03\\xe9bye'
    """
    payload = code.to_bytes(2, "big") + reason.encode("utf-8")[:123]
    if not mask:
        return bytes([0x88, len(payload)]) + payload
    key = os.urandom(4)
    return bytes([0x88, 0x80 | len(payload)]) + key + apply_mask(payload, key)


def _whole_frame_py(data: bytes, max_size: int) -> tuple[str, bytes, bool] | None:
    """The payload of *data* when it is exactly one whole, final text or binary frame within *max_size*.

    Returns ``(opcode, payload, compressed)`` (payload unmasked), else ``None``. The same function is
    compiled from ``_speedups.c`` (used when built: what a message touches on the relay's hot path).
    """
    n = len(data)
    if n < 2:
        return None
    b0 = data[0]
    op = b0 & 0x0F
    if not b0 & 0x80 or (op != OP_TEXT and op != OP_BINARY):
        return None
    b1 = data[1]
    length = b1 & 0x7F
    head = 2
    if length == 126:
        if n < 4:
            return None
        length = (data[2] << 8) | data[3]
        head = 4
    elif length == 127:
        if n < 10:
            return None
        (length,) = struct.unpack_from("!Q", data, 2)
        head = 10
    if b1 & 0x80:
        head += 4
        if head + length != n or length > max_size:
            return None
        payload = apply_mask(data[head:], data[head - 4 : head]) if length else b""
    else:
        if head + length != n or length > max_size:
            return None
        payload = data[head:]
    return _DATA[op], payload, bool(b0 & 0x40)


try:
    from ._speedups import whole_frame
except ImportError:  # not compiled (no C compiler when installed): the same in Python
    whole_frame = _whole_frame_py
