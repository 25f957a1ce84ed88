"""authentik's WebSocket protocol: decoding and encoding frames, without I/O.

Two endpoints speak JSON text frames:

* ``/ws/outpost/<pk>/``: ``{"instruction": <int>, "args": {...}}`` both ways
  (0 ACK, 1 HELLO, 2 TRIGGER_UPDATE, 3 PROVIDER_SPECIFIC, 4 SESSION_END);
* ``/ws/client/``: server-to-browser notices keyed by ``message_type``.

:func:`decode` never raises: whatever arrives is turned into the capture's parsed
columns, with ``parse_error`` saying what was wrong. The encoders are the only
place in wsreplay that writes protocol JSON; the ACK is byte for byte what
authentik sends (Python ``json.dumps`` spacing).
"""

from __future__ import annotations

import json
import re
from enum import IntEnum
from typing import Any, Final, Literal, TypedDict

__all__ = [
    "Instruction",
    "Decoded",
    "HELLO_INTERVAL_S",
    "STATE_TIMEOUT_FACTOR",
    "classify_path",
    "outpost_path",
    "decode",
    "instruction_name",
    "encode_instruction",
    "encode_ack",
    "encode_hello",
    "hello_args",
    "encode_trigger_update",
    "encode_session_end",
    "encode_provider_specific",
    "encode_notice",
    "encode_session_authenticated",
    "encode_notification_new",
    "encode_refresh",
    "ACK_FRAME",
]

#: authentik's HELLO interval (``OUTPOST_HELLO_INTERVAL``), seconds.
HELLO_INTERVAL_S: Final = 10.0
#: authentik keeps an instance's state for this many intervals after a frame.
STATE_TIMEOUT_FACTOR: Final = 1.5


class Instruction(IntEnum):
    """Instruction numbers of the outpost endpoint."""

    ACK = 0
    HELLO = 1
    TRIGGER_UPDATE = 2
    PROVIDER_SPECIFIC = 3
    SESSION_END = 4


class Decoded(TypedDict, total=False):
    """Parsed columns of one frame (every key of the schema's parsed part)."""

    instruction: int | None
    instruction_name: str | None
    instance_uuid: str | None
    version: str | None
    build_hash: str | None
    hostname: str | None
    message_type: str | None
    level: str | None
    tags: str | None
    message: str | None
    parse_error: str | None


_OUTPOST_RE: Final = re.compile(r"^/ws/outpost/([^/]+)/$")
_INT16_MIN, _INT16_MAX = -(2**15), 2**15 - 1
_MAX_ERROR_LEN: Final = 200


def classify_path(path: str) -> tuple[Literal["outpost", "client", "other"], str | None]:
    """Tell which endpoint a request path belongs to.

    Parameters
    ----------
    path : str
        Request path, with or without query string.

    Returns
    -------
    (endpoint, outpost_uuid)
        ``("outpost", pk)`` for ``/ws/outpost/<pk>/``, ``("client", None)`` for
        ``/ws/client/``, ``("other", None)`` for anything else.

    Examples
    --------
    >>> classify_path("/ws/outpost/abc/?instance_uuid=x")
    ('outpost', 'abc')
    >>> classify_path("/ws/client/")
    ('client', None)
    """
    path = path.split("?", 1)[0]
    m = _OUTPOST_RE.match(path)
    if m:
        return "outpost", m.group(1)
    if path == "/ws/client/":
        return "client", None
    return "other", None


def outpost_path(outpost_uuid: str) -> str:
    """The request path of an outpost's WebSocket (trailing slash included)."""
    return f"/ws/outpost/{outpost_uuid}/"


def instruction_name(number: int | None) -> str | None:
    """Name of an instruction number: ``ACK`` ... ``SESSION_END``, else ``UNKNOWN``."""
    if number is None:
        return None
    try:
        return Instruction(number).name
    except ValueError:
        return "UNKNOWN"


def _short(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_LEN else text[: _MAX_ERROR_LEN - 3] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _load_json(payload: str | bytes | None, opcode: str) -> tuple[Any, str | None]:
    """Parse a frame's JSON; return (value, error)."""
    if opcode == "binary":
        return None, "binary frame: authentik expects JSON text"
    if payload is None:
        return None, "empty frame: no payload"
    if isinstance(payload, (bytes, bytearray, memoryview)):
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"invalid UTF-8 at byte {exc.start}"
    try:
        return json.loads(payload), None
    except RecursionError:
        return None, "not JSON: nested too deeply"
    except ValueError as exc:
        return None, _short(f"not JSON: {exc}")


def _str_field(args: dict[str, Any], key: str, column: str, out: Decoded, errors: list[str]) -> None:
    value = args.get(key)
    if value is None:
        return
    if isinstance(value, str):
        out[column] = value  # type: ignore[literal-required]
    else:
        errors.append(f"{key} is {_type_name(value)}, expected string")


def _decode_outpost(value: Any, out: Decoded) -> None:
    if not isinstance(value, dict):
        out["parse_error"] = f"JSON {_type_name(value)}, expected an object with 'instruction'"
        return
    if "instruction" not in value:
        out["parse_error"] = "no 'instruction' key"
        return
    number = value["instruction"]
    if isinstance(number, bool) or not isinstance(number, int):
        out["parse_error"] = f"instruction is {_type_name(number)}, expected integer"
        return
    if not _INT16_MIN <= number <= _INT16_MAX:
        out["instruction_name"] = "UNKNOWN"
        out["parse_error"] = "instruction out of range"
        return
    out["instruction"] = number
    out["instruction_name"] = instruction_name(number)
    errors: list[str] = []
    if out["instruction_name"] == "UNKNOWN":
        errors.append(f"unknown instruction {number}")
    args = value.get("args")
    if args is not None and not isinstance(args, dict):
        errors.append(f"args is {_type_name(args)}, expected object")
    elif isinstance(args, dict) and number == Instruction.HELLO:
        _str_field(args, "uuid", "instance_uuid", out, errors)
        _str_field(args, "version", "version", out, errors)
        _str_field(args, "buildHash", "build_hash", out, errors)
        _str_field(args, "hostname", "hostname", out, errors)
    if errors:
        out["parse_error"] = _short("; ".join(errors))


def _decode_client(value: Any, out: Decoded) -> None:
    if not isinstance(value, dict):
        out["parse_error"] = f"JSON {_type_name(value)}, expected an object with 'message_type'"
        return
    errors: list[str] = []
    if "message_type" not in value:
        errors.append("no 'message_type' key")
    _str_field(value, "message_type", "message_type", out, errors)
    _str_field(value, "level", "level", out, errors)
    _str_field(value, "tags", "tags", out, errors)
    _str_field(value, "message", "message", out, errors)
    if errors:
        out["parse_error"] = _short("; ".join(errors))


def decode(
    payload: str | bytes | None,
    *,
    endpoint: str,
    opcode: Literal["text", "binary"] | str = "text",
) -> Decoded:
    """Decode one frame into the capture's parsed columns. Never raises.

    Parameters
    ----------
    payload : str or bytes or None
        The frame as received (text frames as ``str``; bytes are read as UTF-8).
    endpoint : {"outpost", "client", "other"}
        Which endpoint the frame crossed. ``other`` frames are only checked
        for being JSON text.
    opcode : {"text", "binary"}
        The frame's opcode. authentik only speaks text: a binary frame is kept
        with a ``parse_error``.

    Returns
    -------
    Decoded
        ``instruction`` / ``instruction_name`` / ``instance_uuid`` /
        ``version`` / ``build_hash`` / ``hostname`` for outpost frames,
        ``message_type`` / ``level`` / ``tags`` / ``message`` for client
        frames, and ``parse_error`` (``None`` when the frame decoded cleanly).

    Examples
    --------
    >>> decode('{"instruction": 0, "args": {}}', endpoint="outpost")["instruction_name"]
    'ACK'
    >>> decode("hello", endpoint="outpost")["parse_error"][:8]
    'not JSON'
    """
    out: Decoded = {"parse_error": None}
    try:
        value, error = _load_json(payload, opcode)
        if error is not None:
            if endpoint == "other" and opcode == "binary":
                return out
            out["parse_error"] = error
            return out
        if endpoint == "outpost":
            _decode_outpost(value, out)
        elif endpoint == "client":
            _decode_client(value, out)
    except Exception as exc:
        out = {"parse_error": _short(f"decoder failure: {type(exc).__name__}: {exc}")}
    return out


# --------------------------------------------------------------------------- encoders


def encode_instruction(instruction: int, args: dict[str, Any] | None = None, *, compact: bool = False) -> str:
    """Encode an outpost-endpoint frame.

    Parameters
    ----------
    instruction : int
        Instruction number.
    args : dict, optional
        The ``args`` object (``{}`` when omitted).
    compact : bool
        Go outposts marshal without spaces; authentik (Python) uses
        ``json.dumps`` defaults. ``False`` gives authentik's spacing.
    """
    frame = {"instruction": int(instruction), "args": {} if args is None else args}
    if compact:
        return json.dumps(frame, separators=(",", ":"))
    return json.dumps(frame)


#: The ACK authentik sends, byte for byte.
ACK_FRAME: Final = encode_instruction(Instruction.ACK)


def encode_ack() -> str:
    """authentik's ACK: ``{"instruction": 0, "args": {}}``."""
    return ACK_FRAME


def hello_args(
    *,
    uuid: str,
    version: str,
    build_hash: str = "",
    hostname: str = "",
    golang_version: str | None = "go1.21.3",
    openssl_enabled: bool = False,
    openssl_version: str = "",
    fips_enabled: bool = False,
) -> dict[str, Any]:
    """HELLO args as a Go outpost sends them (``golang_version=None``: Rust outpost's four keys)."""
    args: dict[str, Any] = {"version": version, "buildHash": build_hash, "uuid": uuid, "hostname": hostname}
    if golang_version is not None:
        args.update(
            golangVersion=golang_version,
            opensslEnabled=openssl_enabled,
            opensslVersion=openssl_version,
            fipsEnabled=fips_enabled,
        )
    return args


def encode_hello(args: dict[str, Any] | None = None, *, compact: bool = True) -> str:
    """A HELLO frame (compact JSON, as Go outposts send it, unless ``compact=False``)."""
    return encode_instruction(Instruction.HELLO, args, compact=compact)


def encode_trigger_update() -> str:
    """``{"instruction": 2, "args": {}}``, pushed on configuration changes."""
    return encode_instruction(Instruction.TRIGGER_UPDATE)


def encode_session_end(session_id: str) -> str:
    """SESSION_END as authentik sends it (note the extra ``type`` key)."""
    return encode_instruction(Instruction.SESSION_END, {"type": "event.session.end", "session_id": session_id})


def encode_provider_specific(args: dict[str, Any]) -> str:
    """PROVIDER_SPECIFIC with provider-defined args (``type`` added as authentik does)."""
    return encode_instruction(Instruction.PROVIDER_SPECIFIC, {"type": "event.provider.specific", **args})


def encode_notice(message: str, *, level: str = "info", tags: str | None = None, type_key: bool = True) -> str:
    """A ``/ws/client/`` notice (``message_type: message``) as authentik 2023.10 sends it.

    ``tags`` defaults to the level, as observed on a real server.
    """
    frame: dict[str, Any] = {}
    if type_key:
        frame["type"] = "event.update"
    frame.update(message_type="message", level=level, tags=level if tags is None else tags, message=message)
    return json.dumps(frame)


def encode_session_authenticated() -> str:
    """``{"message_type": "session.authenticated"}`` (with authentik's ``type`` key)."""
    return json.dumps({"type": "event.update", "message_type": "session.authenticated"})


def encode_notification_new(notification_id: str, data: dict[str, Any]) -> str:
    """``notification.new`` as newer authentik servers send it."""
    return json.dumps({"message_type": "notification.new", "id": notification_id, "data": data})


def encode_refresh() -> str:
    """``{"message_type": "refresh"}``, which the web UI also accepts."""
    return json.dumps({"message_type": "refresh"})
