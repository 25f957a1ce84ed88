"""Decode the parsed columns of a capture table that only carries payloads (what ``save`` does).

A frames table built by hand, or converted from another tool, may hold the raw
``payload`` of each message but none of the columns the recorder fills by
decoding it (``instruction_name``, ``version``, ``message_type``,
``parse_error``...). The analysis reads only those, so such a table would
analyse as if nothing had been said. :func:`decode_missing` fills them with the
recorder's own decoder (:func:`wsreplay.protocol.decode`, as
:class:`wsreplay.events.ConnectionLog` calls it), row by row with a cache of
the payloads already seen: a hand-built table then saves, loads and analyses
like a recorded one.

No pandas here (this module is on the storage path the recorder imports).
"""

from __future__ import annotations

from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from ..events import instance_from_query
from ..protocol import Decoded, classify_path, decode
from ..schema import COLUMNS

__all__ = ["PARSED_COLUMNS", "needs_decoding", "decode_missing"]

#: The columns the recorder derives from a frame's payload (and the instance uuid a HELLO names).
PARSED_COLUMNS: Final = (
    "instance_uuid",
    "instruction",
    "instruction_name",
    "version",
    "build_hash",
    "hostname",
    "message_type",
    "level",
    "tags",
    "message",
    "parse_error",
)
#: Parsed columns of which one is set on every message the recorder decoded.
_ANY_DECODED: Final = ("instruction_name", "message_type", "parse_error")


def _valid(table: pa.Table, name: str) -> pa.ChunkedArray | pa.Array:
    return pc.is_valid(table.column(name)) if name in table.column_names else pa.array([False] * table.num_rows)


def needs_decoding(table: pa.Table) -> bool:
    """True when *table* has messages with payloads but no message carries a parsed column."""
    if table.num_rows == 0 or "event" not in table.column_names:
        return False
    msg = pc.fill_null(pc.equal(table.column("event"), "message"), False)
    if not pc.any(msg).as_py():
        return False
    for name in _ANY_DECODED:
        if name in table.column_names and pc.any(pc.and_(msg, _valid(table, name))).as_py():
            return False
    payload = pc.or_(_valid(table, "payload"), _valid(table, "payload_bytes"))
    return bool(pc.any(pc.and_(msg, payload)).as_py())


def decode_missing(table: pa.Table) -> pa.Table:
    """*table* with the parsed columns decoded from the payloads when :func:`needs_decoding`.

    Values already present are kept; only nulls are filled. ``endpoint`` and
    ``outpost_uuid`` are derived from ``path`` where null, and each
    connection's ``instance_uuid`` from its query string or, as the recorder
    does, from its first HELLO that names it onward (rows of a connection in
    ``seq`` order). A table that does not need it is returned unchanged.
    """
    if not needs_decoding(table):
        return table
    n = table.num_rows

    def col(name: str) -> list[Any]:
        return table.column(name).to_pylist() if name in table.column_names else [None] * n

    event, path, query = col("event"), col("path"), col("query")
    endpoint, outpost = col("endpoint"), col("outpost_uuid")
    payload, payload_bytes, opcode = col("payload"), col("payload_bytes"), col("opcode")
    conn, seq = col("conn_id"), col("seq")
    for i in range(n):
        if (endpoint[i] is None or outpost[i] is None) and path[i]:
            ep, pk = classify_path(path[i])
            endpoint[i] = endpoint[i] or ep
            outpost[i] = outpost[i] or pk
    out: dict[str, list[Any]] = {name: col(name) for name in PARSED_COLUMNS}
    found: list[str | None] = [None] * n
    cache: dict[tuple[Any, ...], Decoded] = {}
    for i in range(n):
        if event[i] != "message":
            continue
        data = payload[i] if payload[i] is not None else payload_bytes[i]
        if data is None:
            continue
        op = opcode[i] or ("text" if payload[i] is not None else "binary")
        key = (endpoint[i] or "other", op, data)
        if key not in cache:
            cache[key] = decode(data, endpoint=key[0], opcode=op)
        decoded = cache[key]
        found[i] = decoded.get("instance_uuid")
        for name, value in decoded.items():
            if name != "instance_uuid" and name in out and out[name][i] is None:
                out[name][i] = value
    # instance uuid per connection: from the query, else from the first HELLO naming it on
    order = sorted(range(n), key=lambda i: (str(conn[i]), seq[i] if seq[i] is not None else i))
    current: dict[Any, str | None] = {}
    inst = out["instance_uuid"]
    for i in order:
        c = conn[i]
        if c not in current:
            current[c] = instance_from_query(query[i]) if endpoint[i] == "outpost" else None
        if current[c] is None and found[i]:
            current[c] = found[i]
        if inst[i] is None:
            inst[i] = current[c]
    replace = {name: pa.array(values, type=COLUMNS[name]) for name, values in out.items()}
    replace["endpoint"] = pa.array(endpoint, type=COLUMNS["endpoint"])
    replace["outpost_uuid"] = pa.array(outpost, type=COLUMNS["outpost_uuid"])
    for name, arr in replace.items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, arr)
        else:
            table = table.append_column(pa.field(name, COLUMNS[name]), arr)
    return table
