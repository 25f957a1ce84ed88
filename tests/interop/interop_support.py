"""Helpers of the interop tests (import as ``from interop_support import ...``)."""

from __future__ import annotations

from pathlib import Path

from wsreplay.events import ConnectionLog
from wsreplay.protocol import encode_ack, encode_hello, encode_notice, encode_session_end
from wsreplay.store import CaptureWriter

FIXTURES = Path(__file__).parent / "fixtures"
PK = "1ee03a64-69e4-4f1e-9f06-35cc8e6de56a"
T0 = 1_795_838_763_116_899_000  # the real-traffic fixture's first handshake, in ns
MS = 1_000_000


def sample_rows(t0: int = T0) -> list[dict]:
    """Rows of four connections covering every event kind, opcode and odd payload."""
    rows: list[dict] = []
    hello = encode_hello({"uuid": "inst-1", "version": "2023.10.0", "buildHash": "abc", "hostname": "probe"})
    outpost = ConnectionLog("cap-1", f"/ws/outpost/{PK}/", "instance_uuid=inst-1&attempt=0", conn_id="c-outpost")
    rows.append(outpost.open(t0, status=101, user_agent="goauthentik.io/outpost/2023.10.0", peer="127.0.0.1:50000"))
    for k in range(3):
        rows.append(outpost.message(t0 + (k * 10_000 + 1) * MS + 123_456, "to_server", hello))
        rows.append(outpost.message(t0 + (k * 10_000 + 4) * MS + 789, "to_peer", encode_ack()))
    rows.append(outpost.message(t0 + 30_010 * MS, "to_peer", encode_session_end("a" * 64)))
    rows.append(outpost.message(t0 + 30_011 * MS, "to_server", b"\x01\x02\xff"))
    rows.append(outpost.message(t0 + 30_012 * MS, "to_server", b"not utf-8 \xff\xfe", opcode="text"))
    rows.append(outpost.message(t0 + 30_013 * MS, "to_server", "ünïcode ✓ {not json"))
    rows.append(outpost.close(t0 + 30_020 * MS, "to_peer", code=1006))

    client = ConnectionLog("cap-1", "/ws/client/", conn_id="c-client")
    rows.append(
        client.open(t0 + 2 * MS, status=101, user_agent="Mozilla/5.0 (X11; Linux x86_64)", peer="127.0.0.1:50001")
    )
    for k, level in enumerate(["info", "success", "warning"]):
        rows.append(client.message(t0 + (100 + k) * MS, "to_peer", encode_notice(f"notice {k}", level=level)))
    rows.append(client.close(t0 + 200 * MS, "to_server", code=1000, reason="bye"))

    refused = ConnectionLog("cap-1", f"/ws/outpost/{PK}/", conn_id="c-refused")
    rows.append(refused.error(t0 + 300 * MS, "handshake refused: HTTP 403", status=403))

    broken = ConnectionLog("cap-1", "/ws/client/", conn_id="c-broken")
    rows.append(broken.open(t0 + 400 * MS, status=101, user_agent=None, peer="[::1]:50002"))
    rows.append(broken.error(t0 + 401 * MS, "connection reset by peer", direction="to_server"))
    return rows


def write_capture(out: Path, rows: list[dict]) -> Path:
    with CaptureWriter(out, capture_id="cap-1", autoflush=False) as writer:
        writer.write_many(rows)
    return out


def tnet_dumps(value: object) -> bytes:
    """A tnetstring writer written from the format's description (test side only)."""
    if value is None:
        body, tag = b"", b"~"
    elif value is True or value is False:
        body, tag = (b"true" if value else b"false"), b"!"
    elif isinstance(value, int):
        body, tag = str(value).encode(), b"#"
    elif isinstance(value, float):
        body, tag = repr(value).encode(), b"^"
    elif isinstance(value, bytes):
        body, tag = value, b","
    elif isinstance(value, str):
        body, tag = value.encode(), b";"
    elif isinstance(value, list):
        body, tag = b"".join(tnet_dumps(v) for v in value), b"]"
    elif isinstance(value, dict):
        body, tag = b"".join(tnet_dumps(k) + tnet_dumps(v) for k, v in value.items()), b"}"
    else:
        raise TypeError(value)
    return str(len(body)).encode() + b":" + body + tag
