"""The capture's columns and their types, written down once, without importing pyarrow.

:mod:`wsreplay.schema` builds the pyarrow schema from this table; the
recorder's lean path (:mod:`wsreplay.store.ipc`) encodes Arrow record batches
from it by hand, so a process that only relays and records never loads
pyarrow or numpy. See ``docs/capture-format.md`` for the contract in prose.
"""

from __future__ import annotations

from typing import Final

__all__ = ["FORMAT_VERSION", "VERSION_KEY", "COLUMN_TYPES", "TIMESTAMP", "STRING", "BINARY", "INT_WIDTHS"]

#: Version of the capture format written by this wsreplay's recorder (plain segments).
FORMAT_VERSION: Final = 1
#: Key of the format version in Parquet / Arrow schema metadata.
VERSION_KEY: Final = b"wsreplay.format_version"

#: Type names used below.
TIMESTAMP: Final = "timestamp[ns, tz=UTC]"
STRING: Final = "string"
BINARY: Final = "binary"
#: Integer type name -> bit width (all signed).
INT_WIDTHS: Final = {"int16": 16, "int32": 32, "int64": 64}

#: Column name -> type name, in file order.
COLUMN_TYPES: Final[dict[str, str]] = {
    "ts": TIMESTAMP,
    "capture_id": STRING,
    "conn_id": STRING,
    "seq": "int64",
    "endpoint": STRING,
    "path": STRING,
    "query": STRING,
    "outpost_uuid": STRING,
    "instance_uuid": STRING,
    "event": STRING,
    "direction": STRING,
    "opcode": STRING,
    "payload": STRING,
    "payload_bytes": BINARY,
    "size": "int64",
    "instruction": "int16",
    "instruction_name": STRING,
    "version": STRING,
    "build_hash": STRING,
    "hostname": STRING,
    "message_type": STRING,
    "level": STRING,
    "tags": STRING,
    "message": STRING,
    "close_code": "int32",
    "close_reason": STRING,
    "status": "int32",
    "user_agent": STRING,
    "peer": STRING,
    "parse_error": STRING,
}
